"""What one run and one test result are."""
from __future__ import annotations

import dataclasses
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


@dataclasses.dataclass
class TestRecord:
    __test__ = False   # not a pytest test class

    nodeid: str
    test_id: str        # e.g. test_arc[sim-p2p:RUNNING->STOP]
    outcome: Outcome
    duration: float
    message: str = ""
    rule: str = ""
    link: str = ""
