"""The fault-knob table: one deliberate misbehaviour of the sim per rule the suites check.

A knob does nothing unless the profile's `backend_config.sim.faults` names it; the sim asks `fire(name)` at
each decision point and records the knobs that actually changed its behaviour.
"""
from __future__ import annotations

import dataclasses
import errno
from types import MappingProxyType
from typing import Any, Iterable, Mapping


@dataclasses.dataclass(frozen=True, eq=False)
class Fault:
    """One knob: its name, the rule id (model/spec.py) it breaks, a summary, default params."""

    name: str
    rule_id: str
    summary: str
    params: Mapping[str, Any] = dataclasses.field(default_factory=lambda: MappingProxyType({}))


def _f(name: str, rule_id: str, summary: str, **params: Any) -> Fault:
    return Fault(name, rule_id, summary, MappingProxyType(params))


_TABLE = [
    _f("accept_illegal_arc", "fsm.illegal-arc-einval",
       "a SET to an unsupported, blocked or ERROR target succeeds and the state moves there"),
    _f("wrong_errno", "fsm.illegal-arc-einval",
       "illegal targets (< NR) fail with `errno` (default EPERM) instead of EINVAL",
       errno=errno.EPERM),
    _f("fd_on_non_opening_arc", "fsm.no-data-fd-otherwise",
       "every successful SET that ends in STOP (e.g. STOP_COPY->STOP, RUNNING->STOP) returns a data_fd"),
    _f("no_fd_on_opening_arc", "fsm.data-fd-on-opening-arc",
       "STOP->RESUMING opens the session but returns data_fd -1"),
    _f("no_cloexec", "fsm.data-fd-cloexec", "data fds are created without FD_CLOEXEC"),
    _f("same_state_not_noop", "fsm.same-state-noop",
       "a SET to the current state fails with EBUSY"),
    _f("out_of_range_accepted", "fsm.out-of-range-einval",
       "a SET to a value >= NR fails with ERANGE instead of EINVAL"),
    _f("move_state_on_failed_set", "fsm.failed-set-keeps-state",
       "a SET rejected before any step leaves the device in STOP"),
    _f("wrong_state_after_set", "fsm.state-after-set",
       "after a successful SET to STOP, GET reports RUNNING (until the next SET or reset)"),
    _f("wrong_migration_flags", "fsm.flags-match-profile",
       "MIGRATION GET reports flags ^ P2P (the FSM still uses the configured flags)"),
    _f("corrupt_stream", "stream.segmentation-free",
       "a read() of fewer than 4096 bytes skips one byte of the stream (off-by-one window)"),
    _f("truncated_stream", "stream.data-size-estimate",
       "the STOP_COPY stream ends `bytes` early while MIG_DATA_SIZE reports the full length",
       bytes=16),
    _f("enomsg_in_stop_copy", "stream.stop-copy-eof",
       "the end of the STOP_COPY stream is reported with ENOMSG instead of read() == 0"),
    _f("wrong_data_size", "stream.data-size-estimate", "MIG_DATA_SIZE reports 2 * length + 4096"),
    _f("stale_fd_readable", "stream.ended-session-enodev",
       "an ended session's fd keeps working (read returns the rest/0, write is swallowed)"),
    _f("saving_fd_writable", "stream.saving-fd-not-writable",
       "write() on the saving fd succeeds (bytes are dropped) instead of EBADF"),
    _f("resuming_fd_readable", "stream.resuming-fd-not-readable",
       "read() on the resuming fd returns 0 instead of EBADF"),
    _f("seekable_fd", "stream.no-seek", "pread()/pwrite() on a data fd succeed instead of ESPIPE"),
    _f("precopy_info_any_state", "precopy.info-only-in-precopy",
       "VFIO_MIG_GET_PRECOPY_INFO succeeds outside PRE_COPY/PRE_COPY_P2P"),
    _f("precopy_initial_grows", "precopy.initial-bytes-decrease",
       "initial_bytes grows by the number of bytes read instead of shrinking"),
    _f("accept_incomplete_resume", "resume.incomplete-stream-fails",
       "RESUMING->STOP succeeds (loading nothing) with an incomplete or invalid stream"),
    _f("reset_keeps_state", "reset.returns-running",
       "a reset while a session is open only ends the session; the state stays (a second reset works)"),
    # -- spec fidelity: knobs for the rules added last to the catalogue --------------------------
    _f("failed_set_returns_fd", "fsm.no-data-fd-otherwise",
       "a rejected SET also returns a data_fd (of a disabled session) besides EINVAL"),
    _f("data_fd_sentinel_kept", "fsm.no-data-fd-otherwise",
       "a successful SET that opens no session leaves the caller's data_fd word as it was (not -1)"),
    _f("writeback_reached_state", "fsm.set-writeback",
       "a failed SET writes back the state the device is in instead of the requested one"),
    _f("data_fd_rdwr", "stream.saving-fd-not-writable",
       "data fds are opened O_RDWR (read/write still refuse the wrong direction)"),
    _f("rejected_set_ends_session", "session.rejected-set-keeps-session",
       "a SET rejected before any step ends the live session (its fd gives ENODEV)"),
    _f("saving_group_drops_fd", "session.saving-group-same-fd",
       "PRE_COPY(_P2P) -> STOP_COPY ends the pre-copy session instead of continuing it on the same fd"),
    _f("stop_copy_eof_not_readable", "stream.stop-copy-poll-readable",
       "poll() at the end of the STOP_COPY data reports nothing instead of readable"),
    _f("failed_path_leaves_path", "fsm.failed-path-on-path",
       "an arc failing part-way along a SET moves the device to a state off the path (not ERROR)"),
    _f("out_of_range_truncated", "fsm.out-of-range-einval",
       "a SET keeps only the low 3 bits of the requested value (0xffffffff -> PRE_COPY_P2P)"),
    _f("precopy_info_argsz_unchecked", "precopy.info-argsz-einval",
       "VFIO_MIG_GET_PRECOPY_INFO accepts argsz below 24"),
    _f("precopy_info_on_resuming_einval", "precopy.info-enotty-on-resuming",
       "VFIO_MIG_GET_PRECOPY_INFO on a resuming fd fails with EINVAL instead of ENOTTY"),
    _f("precopy_info_stray_flags", "precopy.info-flags-opt-in",
       "VFIO_MIG_GET_PRECOPY_INFO returns flags with bit 1 set, which nobody opted in to"),
    _f("precopy_reinit_keeps_dirty", "precopy.reinit-semantics",
       "VFIO_PRECOPY_INFO_REINIT is reported with 4096 dirty_bytes left over instead of 0"),
    _f("mig_features_einval_without_ops", "feature.mig-enotty-without-mig-ops",
       "a device without migration answers MIGRATION/MIG_DEVICE_STATE/MIG_DATA_SIZE with EINVAL"),
    _f("log_features_einval_without_ops", "feature.log-enotty-without-log-ops",
       "a device without DMA logging answers DMA_LOGGING_START/STOP/REPORT with EINVAL"),
    _f("dma_start_page_size_bogus", "dma.start-writes-page-size",
       "DMA_LOGGING_START writes back 1.5 times the granule it uses (not a power of two)"),
    _f("dma_report_rescale_wrong", "dma.dirty-pages-reported",
       "DMA_LOGGING_REPORT sets bits at the tracking granule whatever page size it is asked for"),
    _f("dma_report_keeps_log", "dma.report-clears-log",
       "DMA_LOGGING_REPORT does not clear the pages it reported"),
    _f("feature_get_set_accepted", "fsm.feature-get-set-einval",
       "VFIO_DEVICE_FEATURE with GET|SET (no PROBE) runs as a SET instead of failing with EINVAL"),
    _f("get_state_fails_in_stop_copy", "fsm.get-state-ok",
       "GET MIG_DEVICE_STATE fails with EIO while the device is in STOP_COPY"),
    _f("precopy_info_fails_in_p2p", "precopy.info-works-in-precopy",
       "VFIO_MIG_GET_PRECOPY_INFO fails with EINVAL in PRE_COPY_P2P (works in PRE_COPY only)"),
    _f("legal_arc_fails", "fsm.legal-arc",
       "the single arc PRE_COPY(_P2P) -> STOP_COPY fails with EIO (the state stays at the last step)"),
    _f("reserved_migration_flag", "fsm.flags-valid",
       "MIGRATION GET reports the reserved bit 1 << 3 besides the configured flags"),
    _f("resume_refuses_valid_stream", "stream.round-trip",
       "RESUMING->STOP fails with EINVAL even for a complete, valid stream"),
    _f("precopy_end_eof", "precopy.enomsg-at-temporary-end",
       "read() at the temporary end of pre-copy data returns 0 instead of ENOMSG (like mtty)"),
]

def _extension_rows() -> list[Fault]:
    """Knob rows of the region/v1, depth-suite and consumer modules (each keeps its own table)."""
    from . import faults_consumers, faults_depth, faults_regions
    return [*faults_regions.TABLE, *faults_depth.TABLE, *faults_consumers.TABLE]


#: Core knobs whose rule shows only on another sim profile (e.g. a device without migration ops).
BASES: dict[str, str] = {"mig_features_einval_without_ops": "sim-v1-slow",
                         "log_features_einval_without_ops": "sim-stop-copy"}

#: Knobs for the core suites (fsm/, data/); the extension modules carry their own.
CORE_FAULTS: tuple[str, ...] = tuple(fault.name for fault in _TABLE)

_TABLE += _extension_rows()

#: name -> Fault, every knob the sim understands.
FAULTS: dict[str, Fault] = {fault.name: fault for fault in _TABLE}
assert len(FAULTS) == len(_TABLE), "duplicate fault knob name"


def faults_for_rule(rule_id: str) -> list[Fault]:
    """The knobs that break `rule_id` (empty if none)."""
    return [fault for fault in _TABLE if fault.rule_id == rule_id]


class ActiveFaults:
    """The knobs a sim instance was configured with, their params, and which have fired."""

    def __init__(self, specs: Iterable[Mapping[str, Any]] = ()):
        self.params: dict[str, dict[str, Any]] = {}
        self.fired: list[str] = []
        for spec in specs:
            name, params = _parse(spec)
            self.params[name] = params

    def __contains__(self, name: str) -> bool:
        return name in self.params

    def __bool__(self) -> bool:
        return bool(self.params)

    def fire(self, name: str) -> bool:
        """True if knob `name` is on; records it in `fired` (once) when it is."""
        if name not in self.params:
            return False
        if name not in self.fired:
            self.fired.append(name)
        return True

    def param(self, name: str, key: str) -> Any:
        return self.params[name][key]

    def __repr__(self) -> str:
        return f"ActiveFaults({sorted(self.params)}, fired={self.fired})"


def _parse(spec: Mapping[str, Any] | str) -> tuple[str, dict[str, Any]]:
    """Validate one `{name: ..., **params}` entry against the table (ValueError names the known ones)."""
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise ValueError(f"a sim fault is a mapping with a 'name' key, got {spec!r}")
    name = spec["name"]
    if name not in FAULTS:
        raise ValueError(f"unknown sim fault {name!r} (known: {', '.join(sorted(FAULTS))})")
    fault = FAULTS[name]
    params = dict(fault.params)
    for key, value in spec.items():
        if key == "name":
            continue
        if key not in fault.params:
            known = ", ".join(sorted(fault.params)) or "none"
            raise ValueError(f"sim fault {name!r} has no parameter {key!r} (known: {known})")
        params[key] = value
    return name, params
