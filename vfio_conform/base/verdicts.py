"""The words of every verdict, defined once, and what each output format calls them.

A test's outcome (`Outcome`), a run's lifecycle (`RunStatus`) and why a run is incomplete
(`Reason`), the verdict of a run (`Verdict`: CONFORMANT, CONFORMANT-SUBSET, NON-CONFORMANT,
INCOMPLETE) and which outcomes keep a run conformant. Every output names them through this
module: the CLI and JSON use the values themselves; JUnit, KTAP, Allure and KCIDB their own
words (the mappings below); the HTML report its labels (report/outcomes.py styles these values).
"""
from __future__ import annotations

import enum


class Outcome(str, enum.Enum):
    """Distinct verdicts: a skip is never a pass, a waived failure is never a pass."""

    PASS = "pass"
    FAIL = "fail"                    # the device broke the spec
    NOT_SUPPORTED = "not-supported"  # capability absent per profile
    KNOWN_ISSUE = "known-issue"      # failure waived in the profile, with a link
    INFRA_ERROR = "infra-error"      # harness, lab or host problem
    GATED = "gated"                  # not run: hazard on this kernel
    SKIPPED = "skipped"              # not run for another stated reason


#: Outcomes that keep a run conformant (every other recorded outcome makes it non-conformant or incomplete).
CONFORMANT_OUTCOMES = frozenset({Outcome.PASS.value, Outcome.KNOWN_ISSUE.value, Outcome.NOT_SUPPORTED.value,
                                 Outcome.GATED.value})


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


class Verdict(str, enum.Enum):
    CONFORMANT = "CONFORMANT"
    NON_CONFORMANT = "NON-CONFORMANT"
    INCOMPLETE = "INCOMPLETE"
    #: every selected test conforms, but the run selected only part of the profile's suite
    #: (-k, -m, node ids, a file): never a qualification, and never the bare word CONFORMANT
    CONFORMANT_SUBSET = "CONFORMANT-SUBSET"


# -- each format's words for an outcome -----------------------------------------------------------
#: JUnit XML: a <skipped> element for these (a fail is <failure>, an infra-error <error>).
JUNIT_SKIPPED = (Outcome.KNOWN_ISSUE, Outcome.NOT_SUPPORTED, Outcome.GATED, Outcome.SKIPPED)
#: Allure: the result's status.
ALLURE_STATUS = {Outcome.PASS: "passed", Outcome.FAIL: "failed", Outcome.INFRA_ERROR: "broken",
                 Outcome.KNOWN_ISSUE: "skipped", Outcome.NOT_SUPPORTED: "skipped", Outcome.GATED: "skipped",
                 Outcome.SKIPPED: "skipped"}
#: KCIDB: a test's status (by the stored outcome value; anything else is ERROR).
KCIDB_STATUS = {"pass": "PASS", "fail": "FAIL", "known-issue": "FAIL", "infra-error": "ERROR",
                "not-supported": "SKIP", "gated": "SKIP", "skipped": "SKIP"}
