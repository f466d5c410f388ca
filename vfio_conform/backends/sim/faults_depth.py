"""Fault knobs for the depth suites (round trips, hostile streams, random walks, DMA logging, reset).

Each row breaks one rule of model/spec.py that only the depth suites check; tests/
test_depth_faults_caught.py proves the suites fail naming it.
"""
from __future__ import annotations


def _rows() -> list:
    from .faults import Fault
    rows = [
        ("resume_skips_regions", "roundtrip.state-preserved",
         "RESUMING->STOP loads the internal block but not the region contents"),
        ("precopy_stale_snapshot", "precopy.dirty-carried",
         "a pre-copy session streams the contents as they were when it opened (no dirty tracking)"),
        ("precopy_dirty_stuck", "precopy.dirty-bytes-sane",
         "PRECOPY_INFO reports 4096 more dirty_bytes than there are (never reaches 0)"),
        ("accept_extra_bytes", "resume.hostile-stream-refused",
         "bytes written past the end of the stream are silently dropped instead of ENOMEM"),
        ("header_checked_only_on_write", "resume.corrupt-header-refused",
         "like mtty: RESUMING->STOP loads a full-length stream without re-checking its header"),
        ("resume_small_writes_lost", "resume.segmentation-free",
         "write()s of fewer than 8 bytes report success but store nothing"),
        ("data_size_only_stopped", "datasize.any-state",
         "MIG_DATA_SIZE fails with EINVAL in RESUMING, PRE_COPY and PRE_COPY_P2P"),
        ("dma_start_unchecked", "dma.start-args",
         "DMA_LOGGING_START accepts unaligned and overlapping ranges"),
        ("dma_report_page_size_unchecked", "dma.report-page-size",
         "DMA_LOGGING_REPORT accepts a page_size below 4096 or not a power of two"),
        ("dma_start_twice_ok", "dma.start-once",
         "a second DMA_LOGGING_START without STOP succeeds (like mtty's stubs)"),
        ("dma_report_without_start_ok", "dma.report-needs-start",
         "DMA_LOGGING_REPORT without START succeeds (like mtty's stubs)"),
        ("dma_report_clears_bitmap", "dma.report-only-sets-bits",
         "DMA_LOGGING_REPORT zeroes the user's bitmap (rounded up to 8 bytes) before setting bits"),
        ("reset_keeps_resume_data", "reset.aborts-resuming",
         "bytes written to an aborted (reset) resume session are prepended to the next one"),
        ("reset_breaks_save", "reset.device-usable",
         "the first STOP_COPY stream after a reset is empty"),
        ("live_read_eio", "walk.model-agreement",
         "read() of an odd size on a live saving data_fd fails with EIO"),
        ("close_fd_changes_state", "session.close-keeps-state",
         "closing a live saving data_fd moves the device to STOP (ending the session)"),
    ]
    return [Fault(name, rule, summary) for name, rule, summary in rows]


#: Fault rows merged into faults.FAULTS.
TABLE: list = _rows()
