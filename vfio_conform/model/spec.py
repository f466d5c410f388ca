"""The rule catalogue: each rule the suites check, with a stable id and the spec sentence (paraphrased).

Suites mark tests with `@pytest.mark.vc_spec(<id>)`, failures quote the rule, fault knobs name it.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Rule:
    id: str
    text: str
    source: str = "include/uapi/linux/vfio.h (6.12)"
    severity: str = "must"   # "must" fails a test; "should" is recorded as a warning


_RULES = [
    Rule("fsm.legal-arc", "A SET to a state the device supports, on a path the FSM allows, succeeds."),
    Rule("fsm.state-after-set", "After a successful SET, GET reports the requested state."),
    Rule("fsm.data-fd-on-opening-arc",
         "A new data_fd comes back exactly on STOP->STOP_COPY, RUNNING->PRE_COPY, "
         "RUNNING_P2P->PRE_COPY_P2P and STOP->RESUMING (as the last step of the path)."),
    Rule("fsm.no-data-fd-otherwise", "Every other SET (and every GET) reports data_fd = -1."),
    Rule("fsm.data-fd-cloexec", "The data_fd is installed with O_CLOEXEC.", "drivers/vfio/vfio_main.c"),
    Rule("fsm.same-state-noop", "A SET to the current state succeeds, returns no data_fd and changes nothing."),
    Rule("fsm.illegal-arc-einval",
         "A SET to a state the device does not support, to ERROR, or along a blocked arc fails with EINVAL."),
    Rule("fsm.out-of-range-einval", "A SET to a value >= VFIO_DEVICE_STATE_NR fails with EINVAL."),
    Rule("fsm.failed-set-keeps-state",
         "A SET rejected before any step leaves the device in the state it was in."),
    Rule("fsm.flags-valid",
         "MIGRATION reports STOP_COPY and only the defined combinations of P2P and PRE_COPY."),
    Rule("fsm.flags-match-profile", "The device reports the migration flags its profile declares.",
         "profile"),
    Rule("stream.stop-copy-eof",
         "In STOP_COPY, end of stream is read() returning 0, and ENOMSG is not returned."),
    Rule("stream.segmentation-free",
         "The stream is opaque and ordered: its bytes do not depend on the size of the reads."),
    Rule("stream.saving-fd-not-writable", "The saving data_fd is read-only: write() fails (EBADF)."),
    Rule("stream.resuming-fd-not-readable", "The resuming data_fd is write-only: read() fails (EBADF)."),
    Rule("stream.no-seek", "The data_fd is a stream: pread/pwrite fail with ESPIPE."),
    Rule("stream.ended-session-enodev",
         "After the session ends (or reset), read()/write() on its data_fd fail with ENODEV."),
    Rule("stream.data-size-estimate",
         "MIG_DATA_SIZE estimates the STOP_COPY stream length (within the profile's tolerance)."),
    Rule("stream.round-trip", "A stream saved from a device is accepted by a compatible device "
         "in RESUMING, and RESUMING->STOP succeeds."),
    Rule("resume.incomplete-stream-fails",
         "RESUMING->STOP must fail if the written data is incomplete or invalid."),
    Rule("precopy.info-only-in-precopy",
         "VFIO_MIG_GET_PRECOPY_INFO fails with EINVAL outside PRE_COPY and PRE_COPY_P2P."),
    Rule("precopy.initial-bytes-decrease",
         "initial_bytes only decreases as the user reads the pre-copy stream."),
    Rule("precopy.enomsg-at-temporary-end",
         "At a temporary end of the pre-copy stream read() should fail with ENOMSG.",
         severity="should"),
    Rule("reset.returns-running", "VFIO_DEVICE_RESET returns the device to RUNNING and ends any session."),
]

RULES: dict[str, Rule] = {rule.id: rule for rule in _RULES}


def rule(rule_id: str) -> Rule:
    """The rule with this id (KeyError names the known ids)."""
    try:
        return RULES[rule_id]
    except KeyError:
        raise KeyError(f"unknown rule {rule_id!r} (known: {', '.join(sorted(RULES))})") from None
