"""The fault-knob table: one deliberate misbehaviour of the sim per rule the suites check.

A knob does nothing unless the profile's `backend_config.sim.faults` names it; the sim asks `fire(name)` at
each decision point and records the knobs that actually changed its behaviour. This module is the
one table of every knob (its rule, the suite area that catches it, the profile its proof runs on);
the behaviour sits where it acts (device.py, sessions.py, regions.py with faults_regions.py,
transport.py with faults_consumers.py, ...).
"""
from __future__ import annotations

import dataclasses
import errno
from types import MappingProxyType
from typing import Any, Iterable, Mapping

#: Suite areas a knob belongs to, and the sim profile its proof runs on unless the row names one.
AREA_BASES: Mapping[str, str] = MappingProxyType({
    "core": "sim-p2p-precopy", "depth": "sim-p2p-precopy", "consumers": "sim-p2p-precopy",
    "regions": "sim-p2p", "v1": "sim-v1-mmap", "mismatch": "sim-mismatch",
})

_EMPTY: Mapping[str, Any] = MappingProxyType({})

#: A sim whose BAR0 and BAR2 answer only 4-byte accesses (backends/sim/regions.py `widths`), and the
#: profile regions that grant exactly that width: the region suites pass it (every access they issue
#: has a granted width) and the knob width_fails is proven on it.
WIDTH_ONLY_REGIONS = (
    {"index": 0, "size": 65536, "flags": ["READ", "WRITE", "MMAP"], "sparse": [[0, 32768], [32768, 32768]],
     "widths": [4]},
    {"index": 2, "size": 4096, "flags": ["READ", "WRITE"], "widths": [4]},
)
WIDTH_ONLY_POLICY = {
    "peer_layout": "same",
    "BAR0": {"access": "readwrite", "size": 65536, "mmap": True, "widths": [4], "unaligned": True,
             "probe_bounds": True},
    "BAR2": {"access": "readwrite", "size": 4096, "mmap": False, "widths": [4], "unaligned": True,
             "probe_bounds": True},
    "CONFIG": {"access": "read", "size": 256, "mmap": False, "widths": [1, 2, 4], "unaligned": True,
               "probe_bounds": True},
}


@dataclasses.dataclass(frozen=True, eq=False)
class Fault:
    """One knob: its name, the rule id (model/spec.py) it breaks, its suite area, a summary, default
    params, and the setup its proof runs on (base profile, profile and sim config overrides)."""

    name: str
    rule_id: str
    area: str
    summary: str
    params: Mapping[str, Any] = dataclasses.field(default_factory=lambda: _EMPTY)
    base: str = ""
    profile: Mapping[str, Any] = dataclasses.field(default_factory=lambda: _EMPTY)
    sim_config: Mapping[str, Any] = dataclasses.field(default_factory=lambda: _EMPTY)

    @property
    def proof_base(self) -> str:
        """The sim profile the knob is proven caught on."""
        return self.base or AREA_BASES[self.area]


def _f(name: str, rule_id: str, area: str, summary: str, *, base: str = "",
       profile: Mapping[str, Any] = _EMPTY, sim_config: Mapping[str, Any] = _EMPTY,
       **params: Any) -> Fault:
    assert area in AREA_BASES, area
    return Fault(name, rule_id, area, summary, MappingProxyType(params), base,
                 MappingProxyType(dict(profile)), MappingProxyType(dict(sim_config)))


_TABLE = [
    # -- core --------------------------------------------------------------------------------------
    _f("accept_illegal_arc", "fsm.illegal-arc-einval", "core",
       "a SET to an unsupported, blocked or ERROR target succeeds and the state moves there"),
    _f("wrong_errno", "fsm.illegal-arc-einval", "core",
       "illegal targets (< NR) fail with `errno` (default EPERM) instead of EINVAL", errno=errno.EPERM),
    _f("fd_on_non_opening_arc", "fsm.no-data-fd-otherwise", "core",
       "every successful SET that ends in STOP (e.g. STOP_COPY->STOP, RUNNING->STOP) returns a data_fd"),
    _f("no_fd_on_opening_arc", "fsm.data-fd-on-opening-arc", "core",
       "STOP->RESUMING opens the session but returns data_fd -1"),
    _f("no_cloexec", "fsm.data-fd-cloexec", "core",
       "data fds are created without FD_CLOEXEC"),
    _f("same_state_not_noop", "fsm.same-state-noop", "core",
       "a SET to the current state fails with EBUSY"),
    _f("out_of_range_accepted", "fsm.out-of-range-einval", "core",
       "a SET to a value >= NR fails with ERANGE instead of EINVAL"),
    _f("move_state_on_failed_set", "fsm.failed-set-keeps-state", "core",
       "a SET rejected before any step leaves the device in STOP"),
    _f("wrong_state_after_set", "fsm.state-after-set", "core",
       "after a successful SET to STOP, GET reports RUNNING (until the next SET or reset)"),
    _f("wrong_migration_flags", "fsm.flags-match-profile", "core",
       "MIGRATION GET reports flags ^ P2P (the FSM still uses the configured flags)"),
    _f("corrupt_stream", "stream.segmentation-free", "core",
       "a read() of fewer than 4096 bytes skips one byte of the stream (off-by-one window)"),
    _f("truncated_stream", "stream.data-size-estimate", "core",
       "the STOP_COPY stream ends `bytes` early while MIG_DATA_SIZE reports the full length", bytes=16),
    _f("enomsg_in_stop_copy", "stream.stop-copy-eof", "core",
       "the end of the STOP_COPY stream is reported with ENOMSG instead of read() == 0"),
    _f("wrong_data_size", "stream.data-size-estimate", "core",
       "MIG_DATA_SIZE reports 2 * length + 4096"),
    _f("stale_fd_readable", "stream.ended-session-enodev", "core",
       "an ended session's fd keeps working (read returns the rest/0, write is swallowed)"),
    _f("saving_fd_writable", "stream.saving-fd-not-writable", "core",
       "write() on the saving fd succeeds (bytes are dropped) instead of EBADF"),
    _f("resuming_fd_readable", "stream.resuming-fd-not-readable", "core",
       "read() on the resuming fd returns 0 instead of EBADF"),
    _f("seekable_fd", "stream.no-seek", "core",
       "pread()/pwrite() on a data fd succeed instead of ESPIPE"),
    _f("precopy_info_any_state", "precopy.info-only-in-precopy", "core",
       "VFIO_MIG_GET_PRECOPY_INFO succeeds outside PRE_COPY/PRE_COPY_P2P"),
    _f("precopy_initial_grows", "precopy.initial-bytes-decrease", "core",
       "initial_bytes grows by the number of bytes read instead of shrinking"),
    _f("accept_incomplete_resume", "resume.incomplete-stream-fails", "core",
       "RESUMING->STOP succeeds (loading nothing) with an incomplete or invalid stream"),
    _f("reset_keeps_state", "reset.returns-running", "core",
       "a reset while a session is open only ends the session; the state stays (a second reset works)"),
    _f("failed_set_returns_fd", "fsm.no-data-fd-otherwise", "core",
       "a rejected SET also returns a data_fd (of a disabled session) besides EINVAL"),
    _f("data_fd_sentinel_kept", "fsm.no-data-fd-otherwise", "core",
       "a successful SET that opens no session leaves the caller's data_fd word as it was (not -1)"),
    _f("writeback_reached_state", "fsm.set-writeback", "core",
       "a failed SET writes back the state the device is in instead of the requested one"),
    _f("data_fd_rdwr", "stream.saving-fd-not-writable", "core",
       "data fds are opened O_RDWR (read/write still refuse the wrong direction)"),
    _f("rejected_set_ends_session", "session.rejected-set-keeps-session", "core",
       "a SET rejected before any step ends the live session (its fd gives ENODEV)"),
    _f("saving_group_drops_fd", "session.saving-group-same-fd", "core",
       "PRE_COPY(_P2P) -> STOP_COPY ends the pre-copy session instead of continuing it on the same fd"),
    _f("stop_copy_eof_not_readable", "stream.stop-copy-poll-readable", "core",
       "poll() at the end of the STOP_COPY data reports nothing instead of readable"),
    _f("failed_path_leaves_path", "fsm.failed-path-on-path", "core",
       "an arc failing part-way along a SET moves the device to a state off the path (not ERROR)"),
    _f("out_of_range_truncated", "fsm.out-of-range-einval", "core",
       "a SET keeps only the low 3 bits of the requested value (0xffffffff -> PRE_COPY_P2P)"),
    _f("precopy_info_argsz_unchecked", "precopy.info-argsz-einval", "core",
       "VFIO_MIG_GET_PRECOPY_INFO accepts argsz below 24"),
    _f("precopy_info_on_resuming_einval", "precopy.info-enotty-on-resuming", "core",
       "VFIO_MIG_GET_PRECOPY_INFO on a resuming fd fails with EINVAL instead of ENOTTY"),
    _f("precopy_info_stray_flags", "precopy.info-flags-opt-in", "core",
       "VFIO_MIG_GET_PRECOPY_INFO returns flags with bit 1 set, which nobody opted in to"),
    _f("precopy_reinit_keeps_dirty", "precopy.reinit-semantics", "core",
       "VFIO_PRECOPY_INFO_REINIT is reported with 4096 dirty_bytes left over instead of 0"),
    _f("mig_features_einval_without_ops", "feature.mig-enotty-without-mig-ops", "core",
       "a device without migration answers MIGRATION/MIG_DEVICE_STATE/MIG_DATA_SIZE with EINVAL",
       base="sim-v1-slow"),
    _f("log_features_einval_without_ops", "feature.log-enotty-without-log-ops", "core",
       "a device without DMA logging answers DMA_LOGGING_START/STOP/REPORT with EINVAL",
       base="sim-stop-copy"),
    _f("dma_start_page_size_bogus", "dma.start-writes-page-size", "core",
       "DMA_LOGGING_START writes back 1.5 times the granule it uses (not a power of two)"),
    _f("dma_report_rescale_wrong", "dma.dirty-pages-reported", "core",
       "DMA_LOGGING_REPORT sets bits at the tracking granule whatever page size it is asked for"),
    _f("dma_report_keeps_log", "dma.report-clears-log", "core",
       "DMA_LOGGING_REPORT does not clear the pages it reported"),
    _f("feature_get_set_accepted", "fsm.feature-get-set-einval", "core",
       "VFIO_DEVICE_FEATURE with GET|SET (no PROBE) runs as a SET instead of failing with EINVAL"),
    _f("get_state_fails_in_stop_copy", "fsm.get-state-ok", "core",
       "GET MIG_DEVICE_STATE fails with EIO while the device is in STOP_COPY"),
    _f("precopy_info_fails_in_p2p", "precopy.info-works-in-precopy", "core",
       "VFIO_MIG_GET_PRECOPY_INFO fails with EINVAL in PRE_COPY_P2P (works in PRE_COPY only)"),
    _f("precopy_info_fails", "precopy.info-works-in-precopy", "core",
       "VFIO_MIG_GET_PRECOPY_INFO fails with EIO in PRE_COPY too (PRE_COPY reported all the same)",
       base="sim-precopy"),
    _f("legal_arc_fails", "fsm.legal-arc", "core",
       "the single arc PRE_COPY(_P2P) -> STOP_COPY fails with EIO (the state stays at the last step)"),
    _f("reserved_migration_flag", "fsm.flags-valid", "core",
       "MIGRATION GET reports the reserved bit 1 << 3 besides the configured flags"),
    _f("resume_refuses_valid_stream", "stream.round-trip", "core",
       "RESUMING->STOP fails with EINVAL even for a complete, valid stream"),
    _f("precopy_end_eof", "precopy.enomsg-at-temporary-end", "core",
       "read() at the temporary end of pre-copy data returns 0 instead of ENOMSG (like mtty)"),
    # -- regions -----------------------------------------------------------------------------------
    _f("region_offset_overlap", "region.info-consistent", "regions",
       "GET_REGION_INFO of every sized region but BAR0 reports BAR0's offset (0)"),
    _f("cap_chain_loop", "region.cap-chain-well-formed", "regions",
       "the last capability's next points back at itself"),
    _f("sparse_unaligned", "region.sparse-areas-valid", "regions",
       "the first sparse-mmap area is reported 0x800 bytes later (not page-aligned)"),
    _f("mmap_flag_missing", "region.matches-profile", "regions",
       "GET_REGION_INFO drops the MMAP flag of every region (mmap itself still works)"),
    _f("mmap_incoherent", "region.mmap-coherent", "regions",
       "mmap returns a private snapshot of the range, not the region itself"),
    _f("last_byte_fails", "region.last-byte-accessible", "regions",
       "an access ending at the last byte of a region fails with EINVAL"),
    _f("oob_read_overrun", "region.out-of-bounds-contained", "regions",
       "a read crossing the end of a region returns the whole count, 0xff past the end"),
    _f("oob_read_misplaced", "region.out-of-bounds-contained", "regions",
       "a read crossing the end returns the in-region count of bytes, taken from offset 0"),
    _f("oob_read_past_end", "region.out-of-bounds-contained", "regions",
       "a read starting at or past the end of a region returns zeros instead of failing or 0"),
    _f("oob_write_overcount", "region.out-of-bounds-contained", "regions",
       "a write crossing the end stores the bytes inside but returns the whole length"),
    _f("oob_write_wraps", "region.out-of-bounds-contained", "regions",
       "a write crossing the end stores the bytes past the end at the start of the region (address wrap)"),
    _f("mmap_past_end", "region.mmap-invalid-fails", "regions",
       "mmap of a range reaching past the end of the region succeeds"),
    _f("unaligned_fails", "region.access-widths", "regions",
       "2/4/8-byte accesses at an unaligned offset fail with EINVAL"),
    _f("qword_fails", "region.access-widths", "regions",
       "8-byte accesses fail with EINVAL"),
    _f("width_fails", "region.access-widths", "regions",
       "accesses of `width` bytes fail with EINVAL; proven where BAR0 and BAR2 answer only that width and "
       "the profile grants only it", width=4, sim_config={"regions": list(WIDTH_ONLY_REGIONS)},
       profile={"regions": WIDTH_ONLY_POLICY}),
    _f("peer_layout_differs", "region.peer-layout-declared", "regions",
       "device `device` reports BAR2 twice its real size in GET_REGION_INFO", device="sim1"),
    # -- mismatch ----------------------------------------------------------------------------------
    _f("foreign_layout_accepted", "mismatch.resume-refused", "mismatch",
       "RESUMING accepts a stream of another layout and loads what fits (silent success)"),
    # -- v1 ----------------------------------------------------------------------------------------
    _f("v1_type_cap_missing", "protocol.matches-profile", "v1",
       "the v1 migration region has no TYPE capability"),
    _f("v1_reserved_nonzero", "v1.header-layout", "v1",
       "the reserved field of vfio_device_migration_info reads 0xdeadbeef"),
    _f("v1_any_width", "v1.native-width", "v1",
       "header fields accept accesses of any width and alignment"),
    _f("v1_accept_invalid_state", "v1.state-bits", "v1",
       "device_state 110 (SAVING|RESUMING) is accepted"),
    _f("v1_invalid_moves_state", "v1.state-bits", "v1",
       "a rejected device_state write leaves the device stopped (000)"),
    _f("v1_pending_stuck", "v1.save-loop", "v1",
       "in stop-and-copy pending_bytes stays 1 after the last chunk"),
    _f("v1_chunk_overflow", "v1.chunk-in-region", "v1",
       "data_size reports the chunk plus the region size", base="sim-v1-slow"),
    _f("v1_data_offset_outside", "v1.chunk-in-region", "v1",
       "data_offset reports the region size (outside the region)", base="sim-v1-slow"),
    _f("v1_resume_drops_chunk", "v1.resume-loop", "v1",
       "resuming ignores the second chunk written", base="sim-v1-slow"),
    _f("v1_mmap_stale", "v1.mmap-slow-identical", "v1",
       "an mmap of the data section is a snapshot taken at mmap time"),
    _f("v1_short_chunk_rejected", "v1.short-chunks-accepted", "v1",
       "a data_size write smaller than the data section fails unless it completes the stream",
       base="sim-v1-small"),
    # -- depth -------------------------------------------------------------------------------------
    _f("resume_skips_regions", "roundtrip.state-preserved", "depth",
       "RESUMING->STOP loads the internal block but not the region contents"),
    _f("precopy_stale_snapshot", "precopy.dirty-carried", "depth",
       "a pre-copy session streams the contents as they were when it opened (no dirty tracking)"),
    _f("precopy_dirty_stuck", "precopy.dirty-bytes-sane", "depth",
       "PRECOPY_INFO reports 4096 more dirty_bytes than there are (never reaches 0)"),
    _f("accept_extra_bytes", "resume.hostile-stream-refused", "depth",
       "bytes written past the end of the stream are silently dropped instead of ENOMEM"),
    _f("header_checked_only_on_write", "resume.corrupt-header-refused", "depth",
       "like mtty: RESUMING->STOP loads a full-length stream without re-checking its header"),
    _f("resume_small_writes_lost", "resume.segmentation-free", "depth",
       "write()s of fewer than 8 bytes report success but store nothing"),
    _f("data_size_only_stopped", "datasize.any-state", "depth",
       "MIG_DATA_SIZE fails with EINVAL in RESUMING, PRE_COPY and PRE_COPY_P2P"),
    _f("dma_start_unchecked", "dma.start-args", "depth",
       "DMA_LOGGING_START accepts unaligned and overlapping ranges"),
    _f("dma_report_page_size_unchecked", "dma.report-page-size", "depth",
       "DMA_LOGGING_REPORT accepts a page_size below 4096 or not a power of two"),
    _f("dma_start_twice_ok", "dma.start-once", "depth",
       "a second DMA_LOGGING_START without STOP succeeds (like mtty's stubs)"),
    _f("dma_report_without_start_ok", "dma.report-needs-start", "depth",
       "DMA_LOGGING_REPORT without START succeeds (like mtty's stubs)"),
    _f("dma_report_clears_bitmap", "dma.report-only-sets-bits", "depth",
       "DMA_LOGGING_REPORT zeroes the user's bitmap (rounded up to 8 bytes) before setting bits"),
    _f("reset_keeps_resume_data", "reset.aborts-resuming", "depth",
       "bytes written to an aborted (reset) resume session are prepended to the next one"),
    _f("reset_breaks_save", "reset.device-usable", "depth",
       "the first STOP_COPY stream after a reset is empty"),
    _f("live_read_eio", "walk.model-agreement", "depth",
       "read() of an odd size on a live saving data_fd fails with EIO"),
    _f("close_fd_changes_state", "session.close-keeps-state", "depth",
       "closing a live saving data_fd moves the device to STOP (ending the session)"),
    # -- consumers ---------------------------------------------------------------------------------
    _f("data_size_fails_precopy", "consumer.qemu-converges", "consumers",
       "MIG_DATA_SIZE fails with EIO in PRE_COPY and PRE_COPY_P2P (and works elsewhere)"),
    _f("data_size_fails_running", "consumer.qemu-converges", "consumers",
       "MIG_DATA_SIZE fails with EIO in RUNNING and RUNNING_P2P (and works elsewhere); proven on a "
       "device without PRE_COPY, which QEMU asks during the RAM pre-copy rounds", base="sim-stop-copy"),
    _f("data_size_zero_running", "consumer.qemu-data-size-nonzero", "consumers",
       "MIG_DATA_SIZE reports 0 while the device is RUNNING"),
    _f("enomsg_before_stop_copy_data", "stream.stop-copy-eof", "consumers",
       "the first read() of a session in STOP_COPY fails with ENOMSG (data not staged yet); "
       "later reads return the stream"),
    _f("precopy_initial_endless", "consumer.qemu-initial-data-sent", "consumers",
       "PRECOPY_INFO reports 1 MiB more initial_bytes than there are and pre-copy reads never "
       "reach the temporary end (one filler byte instead of ENOMSG/0)"),
    _f("precopy_initial_underreported", "consumer.qemu-precopy-accounting", "consumers",
       "PRECOPY_INFO reports half the initial_bytes there are"),
    _f("resume_close_drops_data", "resume.close-keeps-data", "consumers",
       "closing the resuming data_fd discards the bytes written to its session"),
    _f("reset_error_sticky", "reset.returns-running", "consumers",
       "a failed SET out of RESUMING leaves the device in ERROR, and VFIO_DEVICE_RESET from ERROR "
       "returns 0 but leaves it there"),
    _f("probe_dma_start_fails", "feature.probe-claimed", "consumers",
       "PROBE of DMA_LOGGING_START fails with ENOTTY although START works"),
    _f("set_on_get_only_ok", "feature.unsupported-op-fails", "consumers",
       "SET on MIGRATION or MIG_DATA_SIZE succeeds (and does nothing)"),
    _f("feature_argsz_unchecked", "feature.bad-argsz-fails", "consumers",
       "GET MIGRATION / MIG_DATA_SIZE with argsz below header + payload succeeds"),
    _f("region_info_small_argsz_ok", "region-info.bad-args-fail", "consumers",
       "GET_REGION_INFO accepts an argsz below 32"),
    _f("region_info_caps_argsz_kept", "region-info.caps-argsz", "consumers",
       "GET_REGION_INFO with too small an argsz for the caps leaves argsz unchanged"),
    _f("reset_flag_without_reset", "device.reset-flag-works", "consumers",
       "DEVICE_INFO reports VFIO_DEVICE_FLAGS_RESET but VFIO_DEVICE_RESET fails with EINVAL"),
    _f("dma_start_granule_zero", "dma.consumer-cycle", "consumers",
       "DMA_LOGGING_START succeeds but writes back page_size 0"),
    _f("dma_report_fails_stopped", "dma.consumer-cycle", "consumers",
       "DMA_LOGGING_REPORT fails with EIO once the device is stopped (the final dirty sync)"),
    _f("reopen_keeps_state", "reset.reopen-running", "consumers",
       "closing the device fd keeps its migration state: a reopened device starts where the old one "
       "was (as mtty does)"),
    _f("close_keeps_session", "session.close-device-ends", "core",
       "closing the device fd leaves its migration session alive: a data_fd kept past the close "
       "still reads the device state"),
    _f("probe_dma_start_unclaimed", "feature.probe-matches-profile", "consumers",
       "PROBE of DMA_LOGGING_START succeeds on a device without DMA logging", base="sim-stop-copy"),
    _f("unknown_feature_einval", "feature.unknown-enotty", "consumers",
       "an unknown feature index (VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 here) fails with EINVAL, "
       "not ENOTTY"),
    _f("reset_flag_spurious", "device.reset-flag-matches-profile", "consumers",
       "DEVICE_INFO reports VFIO_DEVICE_FLAGS_RESET on a device configured without reset",
       base="sim-stop-copy", profile={"features": {"reset": False, "dma_logging": False}},
       sim_config={"reset_supported": False}),
    _f("reset_flag_hidden", "device.reset-flag-advertised", "consumers",
       "DEVICE_INFO omits VFIO_DEVICE_FLAGS_RESET although VFIO_DEVICE_RESET works"),
    _f("flr_keeps_state", "reset.flr-running", "consumers",
       "a Function Level Reset (config space Device Control bit 15) ends the session but leaves "
       "the migration state as it was", sim_config={"pcie_flr": True}),
    _f("flr_keeps_session", "reset.flr-running", "consumers",
       "a Function Level Reset from a saving state reports RUNNING but keeps the saving session "
       "(its data_fd still reads)", sim_config={"pcie_flr": True}),
    # -- DMA logging and maps at the edges, the server's sanitizer output ----------------------
    _f("dma_start_refused", "dma.start-valid", "core",
       "DMA_LOGGING_START of valid ranges fails with EINVAL"),
    _f("dma_start_hint_refused", "dma.start-page-size-hint", "core",
       "DMA_LOGGING_START fails with EINVAL when its page_size hint is larger than a logged range or a "
       "mapped DMA region (as libvfio-user's) instead of picking a page size"),
    _f("dma_report_range_start_only", "dma.report-any-range", "core",
       "DMA_LOGGING_REPORT fails with EOPNOTSUPP unless its iova is the start of a logged range "
       "(libvfio-user: of a DMA region)"),
    _f("dma_map_wrap_accepted", "dma.map-wrap-refused", "core",
       "a DMA map whose address + size passes 2^64 is accepted"),
    _f("out_of_range_reads_past_table", "server.no-sanitizer-report", "core",
       "a SET to exactly VFIO_DEVICE_STATE_NR is refused from the next row of the step table (a "
       "`> NR` bound check, as libvfio-user's); the server prints UBSan's out-of-bounds report"),
    # -- the kernel log ------------------------------------------------------------------------
    _f("warn_on_arc", "kernel.no-warnings", "core",
       "the arc `arc` of a SET works but logs a WARN splat in the (sim's) kernel log",
       arc="PRE_COPY_P2P->PRE_COPY"),
]

#: name -> Fault, every knob the sim understands.
FAULTS: dict[str, Fault] = {fault.name: fault for fault in _TABLE}
assert len(FAULTS) == len(_TABLE), "duplicate fault knob name"

#: Knobs for the core suites (fsm/, data/).
CORE_FAULTS: tuple[str, ...] = tuple(f.name for f in _TABLE if f.area == "core")


def names_in(area: str) -> frozenset[str]:
    """The knob names of one suite area."""
    return frozenset(f.name for f in _TABLE if f.area == area)


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
