"""What one run and one test result are."""
from __future__ import annotations

import dataclasses

from ..base.verdicts import (REASON_TEXT, Outcome, Reason, RunStatus,  # noqa: F401  (the words, defined once)
                              describe_reason)


#: How a passing test's message starts when it did not follow a `should` rule (display text only:
#: the record's `should` field says which rules).
SHOULD_NOT_MET = "should not met: "


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
