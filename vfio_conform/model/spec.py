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
    # -- regions, protocol detection, layout mismatch (issue 5) --------------------------------
    Rule("region.info-consistent",
         "GET_REGION_INFO reports each region at its own offset in the device fd (no overlap), "
         "flags within READ|WRITE|MMAP|CAPS, MMAP only with READ or WRITE, and a page-aligned offset "
         "when MMAP is set."),
    Rule("region.cap-chain-well-formed",
         "With VFIO_REGION_INFO_FLAG_CAPS, cap_offset and every next lie inside argsz past the 32-byte "
         "struct, each header fits, and the chain ends (0) without a loop."),
    Rule("region.sparse-areas-valid",
         "Sparse-mmap areas are page-aligned, non-empty and inside the region; only MMAP regions carry them."),
    Rule("region.matches-profile", "The region has the size and MMAP capability its profile declares.",
         "profile"),
    Rule("region.mmap-coherent",
         "pread and an mmap of the same range return the same bytes; a write through one is seen "
         "through the other."),
    Rule("region.last-byte-accessible", "An access that ends at the last byte of a region succeeds."),
    Rule("region.out-of-bounds-contained",
         "An access that crosses the end of a region either fails or transfers exactly the bytes "
         "inside the region and returns that count; no byte past the end is read or written. An "
         "access starting at or past the end fails or returns 0.",
         "POSIX pread/pwrite (a short count is a valid result); reference: drivers/vfio/pci/"
         "vfio_pci_rdwr.c vfio_pci_bar_rw() clamps to the region, vfio_pci_config.c "
         "vfio_pci_config_rw() fails (6.12)"),
    Rule("region.mmap-invalid-fails",
         "mmap of a range larger than the region, not page-aligned, outside the sparse areas, or of a "
         "region without MMAP fails."),
    Rule("region.access-widths",
         "Accesses of the widths the profile lists succeed (and round-trip); unaligned accesses "
         "behave as the profile says.", "profile"),
    Rule("region.peer-layout-declared",
         "Source and destination report the same region layout, unless the profile declares "
         "them different (regions.peer_layout).", "profile"),
    Rule("mismatch.resume-refused",
         "A stream saved by a device with a different region layout is refused on resume (write() "
         "or RESUMING->STOP fails); it never loads silently."),
    Rule("protocol.matches-profile",
         "The device speaks the migration protocol its profile declares: v1 = a region with TYPE cap "
         "(3, 1), v2 = the MIGRATION feature.", "profile"),
    Rule("v1.header-layout",
         "The v1 migration region starts with the 32-byte vfio_device_migration_info: reserved reads 0, "
         "data_offset is non-zero and inside the region, and fields are accessed at native width.",
         "include/uapi/linux/vfio.h (5.15)"),
    Rule("v1.native-width",
         "Accesses to vfio_device_migration_info fields at other than their native width and "
         "alignment should fail.", "include/uapi/linux/vfio.h (5.15)", "should"),
    Rule("v1.state-bits",
         "Every legal device_state (000, 001, 010, 011, 100) can be set and reads back; 101, 110 and "
         "111 are rejected and the state is unchanged.", "include/uapi/linux/vfio.h (5.15)"),
    Rule("v1.save-loop",
         "Saving: pending_bytes, data_offset and data_size drive a loop that ends with pending_bytes 0 "
         "in stop-and-copy and yields the whole device state.", "include/uapi/linux/vfio.h (5.15)"),
    Rule("v1.chunk-in-region",
         "Each staged chunk lies inside the migration region: data_offset past the header and "
         "data_offset + data_size <= region size.", "include/uapi/linux/vfio.h (5.15)"),
    Rule("v1.resume-loop",
         "Resuming: chunks written at data_offset and committed by writing data_size are loaded, and "
         "the destination re-saves the source's stream.", "include/uapi/linux/vfio.h (5.15)"),
    Rule("v1.mmap-slow-identical",
         "Saving through the mmapped data section and through pread gives byte-identical streams.",
         "hw/vfio/migration.c (QEMU v1)"),
    Rule("v1.short-chunks-accepted",
         "A destination whose data section is smaller than the source's chunk accepts the chunk split "
         "into region-sized writes and loads the whole stream.", "hw/vfio/migration.c (QEMU v1)"),
    # -- depth suites (issue 6) -----------------------------------------------------------------
    Rule("roundtrip.state-preserved",
         "After STOP_COPY on the source, RESUMING -> STOP -> RUNNING on the destination, the "
         "destination holds the source's device state (checked by the profile's verify hook)."),
    Rule("precopy.dirty-carried",
         "State changed while the source is in PRE_COPY reaches the destination: the data read in "
         "PRE_COPY plus the STOP_COPY remainder carry the final state."),
    Rule("precopy.dirty-bytes-sane",
         "dirty_bytes starts at 0 when the pre-copy session opens, and at the temporary end of the "
         "pre-copy data initial_bytes and dirty_bytes are both 0."),
    Rule("resume.hostile-stream-refused",
         "A truncated, extended, corrupted, foreign or empty stream ends in an error at write() or at "
         "RESUMING -> STOP; it never loads silently, and a reset recovers the device."),
    Rule("resume.corrupt-header-refused",
         "RESUMING -> STOP must fail when the stream is invalid, even if write() already reported "
         "the bad header and the byte count is right."),
    Rule("resume.segmentation-free",
         "On RESUMING the write segmentation need not match the source's reads: a valid stream "
         "written in chunks of any size resumes."),
    Rule("datasize.any-state", "VFIO_DEVICE_FEATURE_MIG_DATA_SIZE GET works in every migration state."),
    Rule("dma.start-args",
         "DMA_LOGGING_START fails with EINVAL for no ranges, unaligned or overlapping ranges, E2BIG "
         "for more than PAGE_SIZE/16 ranges and EOVERFLOW for iova + length overflow.",
         "drivers/vfio/vfio_main.c (6.12)"),
    Rule("dma.report-page-size",
         "DMA_LOGGING_REPORT fails with EINVAL for a page_size below 4096 or not a power of two.",
         "drivers/vfio/vfio_main.c (6.12)"),
    Rule("dma.start-once", "A second DMA_LOGGING_START without DMA_LOGGING_STOP is not allowed."),
    Rule("dma.report-needs-start", "DMA_LOGGING_REPORT without a running DMA_LOGGING_START fails."),
    Rule("dma.report-only-sets-bits",
         "DMA_LOGGING_REPORT only sets bits of the user's bitmap (never clears them) and writes "
         "nothing past length / page_size bits."),
    Rule("reset.aborts-resuming",
         "VFIO_DEVICE_RESET is the way to abort RESUMING: afterwards the device is RUNNING and a new "
         "resume of a complete stream succeeds (the aborted data is gone)."),
    Rule("reset.device-usable",
         "After VFIO_DEVICE_RESET the device migrates again: a full STOP_COPY save is non-empty and "
         "resumes on a peer."),
    Rule("session.close-keeps-state",
         "Closing a data_fd does not change the migration state.", "vfio-uapi.md 7.4 / vfio.h"),
    Rule("walk.model-agreement",
         "In any sequence of SETs, reads, writes, closes and resets, a live session's data_fd works: "
         "reads return data, 0 or (pre-copy) ENOMSG and writes of a valid stream are accepted."),
]

RULES: dict[str, Rule] = {rule.id: rule for rule in _RULES}


def rule(rule_id: str) -> Rule:
    """The rule with this id (KeyError names the known ids)."""
    try:
        return RULES[rule_id]
    except KeyError:
        raise KeyError(f"unknown rule {rule_id!r} (known: {', '.join(sorted(RULES))})") from None
