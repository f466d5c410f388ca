"""What one run and one test result are."""
from __future__ import annotations

import dataclasses
import enum


#: How a passing test's message starts when it did not follow a `should` rule (display text only:
#: the record's `should` field says which rules).
SHOULD_NOT_MET = "should not met: "


class Outcome(str, enum.Enum):
    """Distinct verdicts: a skip is never a pass, a waived failure is never a pass."""

    PASS = "pass"
    FAIL = "fail"                    # the device broke the spec
    NOT_SUPPORTED = "not-supported"  # capability absent per profile
    KNOWN_ISSUE = "known-issue"      # failure waived in the profile, with a link
    INFRA_ERROR = "infra-error"      # harness, lab or host problem
    GATED = "gated"                  # not run: hazard on this kernel
    SKIPPED = "skipped"              # not run for another stated reason


@dataclasses.dataclass
class RunMeta:
    """One profile's run: what was tested, where, with what."""

    profile: str
    backend: str
    devices: str
    driver: str
    kernel: str
    harness_version: str
    host: str
    session: str
    argv: str = ""
    started: float = 0.0
    profile_hash: str = ""   # sha256 prefix of the profile file as run (see identity.profile_hash)
    firmware: str = ""       # device firmware version, when the backend knows it
    pid: int = 0             # the process that writes the run (with host and boot_id: is it alive?)
    boot_id: str = ""        # /proc/sys/kernel/random/boot_id of the host when the run started
    outputs: str = ""        # JSON {"junit": path, "allure": path, "ktap": path}: files the run writes
    harness_build: str = ""  # vfio_conform.base.build.HarnessBuild as text: version+commit, suites/rules hash


@dataclasses.dataclass
class TestRecord:
    """The verdict of one test, built once by the plugin and read by every output (store, JUnit,
    Allure, HTML, diff, run summary). `to_dict`/`from_dict` carry it between processes."""

    __test__ = False   # not a pytest test class

    nodeid: str
    test_id: str        # e.g. test_arc[sim-p2p:RUNNING->STOP]
    outcome: Outcome
    duration: float
    message: str = ""
    rule: str = ""      # the rule violated (or, without a violation, the first rule the test checks)
    link: str = ""      # the waiver's link (known issue, or a waived test that passed)
    profile: str = ""
    rules: tuple[str, ...] = ()     # every rule the test checks (vc_spec) plus the one violated
    arc_from: str = ""  # FSM arc of an arc test: state names as the uAPI spells them
    arc_to: str = ""
    devices: tuple[str, ...] = ()
    waiver_index: int | None = None  # known_issues[i] of the profile that waived this failure
    waiver_reason: str = ""
    should: tuple[str, ...] = ()    # `should` rules the device did not follow (the test still passes)
    hazard: str = ""    # the hazard a gated test was not run for
    test_key: str = ""  # test_id without the profile (results.keys): one test across profiles
    arc_expect: str = ""  # arc tests: "accept" or "refuse", what the uAPI requires of the request
    finished: float = 0.0  # time.time() when the deciding phase ended (Allure's start/stop; not stored)

    def to_dict(self) -> dict:
        """Plain JSON-able values (what xdist ships and what JUnit/Allure read)."""
        out = {name: getattr(self, name) for name in _RECORD_FIELDS}    # flat values: no deep copy
        out["outcome"] = self.outcome.value
        for name in ("rules", "devices", "should"):
            out[name] = list(out[name])
        return out

    def properties(self) -> list[tuple[str, str]]:
        """The record as (name, text) pairs, e.g. JUnit testcase properties (empty fields left out)."""
        out = []
        for name, value in self.to_dict().items():
            if name in ("nodeid", "test_id", "message", "duration", "finished"):
                continue
            text = " ".join(value) if isinstance(value, list) else ("" if value is None else str(value))
            if text:
                out.append((f"vc.{name}", text))
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "TestRecord":
        kw = {k: v for k, v in data.items() if k in _RECORD_FIELDS}
        kw["outcome"] = Outcome(kw["outcome"])
        for name in ("rules", "devices", "should"):
            kw[name] = tuple(kw.get(name) or ())
        return cls(**kw)


#: TestRecord's field names, in order.
_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(TestRecord))


class RunStatus(str, enum.Enum):
    """Lifecycle of a run: `running` until it ends `finished` or `incomplete` (with a Reason)."""

    RUNNING = "running"
    FINISHED = "finished"
    INCOMPLETE = "incomplete"


class Reason(str, enum.Enum):
    """Why a run is incomplete (stored in runs.reason)."""

    INTERRUPTED = "interrupted"            # Ctrl-C (SIGINT)
    TERMINATED = "terminated"              # SIGTERM, handled: fixtures torn down, devices made safe
    CRASHED = "crashed"                    # pytest INTERNALERROR, or a lab guest that died
    KILLED = "killed"                      # the process is gone without ending the run (SIGKILL, OOM)
    HOST_RESTARTED = "host-restarted"      # the run's host booted again since the run started
    COLLECTION_ERROR = "collection-error"  # a suite module could not be collected
    EMPTY = "empty"                        # no test of this profile ran
    PARTIAL = "partial"                    # stopped early (-x, --maxfail, a crashed worker)
    STORE_LOST = "store-lost"              # the store failed mid-run (disk full, server gone)
    STALLED = "stalled"                    # no worker reported anything within the stall bound


#: One line per reason, for `results`, the report and the run summary.
REASON_TEXT = {
    Reason.INTERRUPTED: "interrupted (Ctrl-C)",
    Reason.TERMINATED: "terminated by SIGTERM",
    Reason.CRASHED: "the harness crashed (pytest INTERNALERROR or the lab guest died)",
    Reason.KILLED: "its process is gone without ending the run (killed, e.g. SIGKILL)",
    Reason.HOST_RESTARTED: "its host rebooted during the run",
    Reason.COLLECTION_ERROR: "a suite module could not be collected",
    Reason.EMPTY: "no test ran",
    Reason.PARTIAL: "stopped before every selected test ran",
    Reason.STORE_LOST: "the result store failed during the run",
    Reason.STALLED: "no test progressed within the stall bound (a stuck worker); the run was stopped",
}


def describe_reason(reason: str | None) -> str:
    """Human text for a stored reason code (unknown codes are shown as they are)."""
    try:
        return REASON_TEXT[Reason(reason)]
    except ValueError:
        return reason or ""
