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
    Rule("region.out-of-bounds-fails",
         "An access that crosses the end of a region or starts past it fails with an error and "
         "returns no data."),
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

# -- consumer sequences and the hygiene they rely on (QEMU, cloud-hypervisor) ---------------------
_QEMU = "hw/vfio/migration.c (QEMU 9.2-10.x, see docs/consumers.md)"
_CH = "pci/src/vfio.rs, vmm/src/lib.rs (cloud-hypervisor 2026, see docs/consumers.md)"
_CONSUMER_RULES = [
    Rule("consumer.qemu-data-size-nonzero",
         "MIG_DATA_SIZE read while RUNNING is not 0: QEMU sizes its read buffer MIN(1 MiB, the "
         "size) in save setup, and a 0 makes the allocation, and so the migration, fail.", _QEMU),
    Rule("consumer.qemu-initial-data-sent",
         "Reading the pre-copy stream as QEMU does (PRECOPY_INFO, then reads of its buffer size, "
         "counted against initial_bytes first, an empty read or ENOMSG counting as 'all sent') "
         "reaches QEMU's 'initial data sent' point (initial count 0) on an idle device.",
         _QEMU + "; include/uapi/linux/vfio.h (vfio_precopy_info: initial data is a one-time stream)"),
    Rule("consumer.qemu-precopy-accounting",
         "On an idle device each pre-copy read of n bytes lowers initial_bytes by min(n, "
         "initial_bytes) and dirty_bytes stays 0, so QEMU's own count matches the device's.",
         "include/uapi/linux/vfio.h (estimates should match what read() returns); " + _QEMU,
         "should"),
    Rule("resume.close-keeps-data",
         "Closing the resuming data_fd does not discard what was written to it: leaving RESUMING "
         "afterwards loads the complete stream (QEMU's destination closes the fd in its load "
         "cleanup, possibly before it leaves RESUMING).",
         "include/uapi/linux/vfio.h (RESUMING -> STOP processes the data delivered by write()); "
         + _QEMU),
    Rule("reset.reopen-running",
         "A newly opened device fd finds the device in RUNNING (QEMU assumes RUNNING at realize "
         "without asking; mlx5, hisi, pds and qat force it in open_device).", _QEMU, "should"),
    Rule("feature.probe-claimed",
         "VFIO_DEVICE_FEATURE with PROBE (and the op bits the feature supports) returns 0 for every "
         "feature the device offers: the migration features when it migrates (v2), the DMA logging "
         "features when its profile declares them (QEMU decides from the DMA_LOGGING_START probe "
         "whether it can track device dirty pages).", "include/uapi/linux/vfio.h; drivers/vfio/vfio_main.c"),
    Rule("feature.probe-matches-profile",
         "A PROBE of the DMA logging features fails on a device whose profile declares no DMA "
         "logging (else QEMU and cloud-hypervisor would rely on it).", "profile"),
    Rule("feature.unsupported-op-fails",
         "SET on a GET-only feature (MIGRATION, MIG_DATA_SIZE, DMA_LOGGING_REPORT) and GET on a "
         "SET-only one (DMA_LOGGING_START, DMA_LOGGING_STOP) fail with EINVAL.",
         "drivers/vfio/vfio_main.c (vfio_check_feature, 6.12)"),
    Rule("feature.bad-argsz-fails",
         "VFIO_DEVICE_FEATURE with argsz below the 8-byte header, or below header + payload for a "
         "GET or SET, fails with EINVAL.", "drivers/vfio/vfio_main.c (6.12)"),
    Rule("feature.unknown-enotty",
         "A feature index the device does not know should fail with ENOTTY, as vfio-pci-core does: "
         "QEMU's PRECOPY_INFOv2 opt-in (2026 series) SETs feature 12 and treats only ENOTTY as "
         "'not supported'; any other errno fails its migration setup.",
         "drivers/vfio/pci/vfio_pci_core.c; drivers/vfio/vfio_main.c (ENOTTY since 16df67f2189a); "
         + _QEMU, "should"),
    Rule("region-info.bad-args-fail",
         "VFIO_DEVICE_GET_REGION_INFO with argsz below the 32-byte struct, or an index past the "
         "device's regions, fails with EINVAL.", "include/uapi/linux/vfio.h; vfio-uapi.md 2, 7.3"),
    Rule("region-info.caps-argsz",
         "When argsz is too small for a region's capability chain, GET_REGION_INFO still succeeds, "
         "sets VFIO_REGION_INFO_FLAG_CAPS, leaves cap_offset 0 and raises argsz to the size needed.",
         "include/uapi/linux/vfio.h (vfio_info_cap chains)"),
    Rule("device.reset-flag-works",
         "A device that reports VFIO_DEVICE_FLAGS_RESET ('device supports reset') accepts "
         "VFIO_DEVICE_RESET.", "include/uapi/linux/vfio.h"),
    Rule("device.reset-flag-matches-profile",
         "A device whose profile says it cannot be reset does not report VFIO_DEVICE_FLAGS_RESET.",
         "profile"),
    Rule("device.reset-flag-advertised",
         "A device whose VFIO_DEVICE_RESET works should report VFIO_DEVICE_FLAGS_RESET: "
         "cloud-hypervisor (vfio-ioctls) issues the reset only when the flag is set, so its "
         "recovery cannot reset a device that hides it.",
         "include/uapi/linux/vfio.h; " + _CH, "should"),
    Rule("dma.consumer-cycle",
         "DMA_LOGGING_START of valid ranges succeeds and writes back the page size the device "
         "selected, a power of two of at least 4096; DMA_LOGGING_REPORT with that page size "
         "succeeds; DMA_LOGGING_STOP ends logging (cloud-hypervisor's live-migration cycle).",
         "include/uapi/linux/vfio.h; drivers/vfio/vfio_main.c; " + _CH),
]

_RULES += _CONSUMER_RULES

RULES: dict[str, Rule] = {rule.id: rule for rule in _RULES}


def rule(rule_id: str) -> Rule:
    """The rule with this id (KeyError names the known ids)."""
    try:
        return RULES[rule_id]
    except KeyError:
        raise KeyError(f"unknown rule {rule_id!r} (known: {', '.join(sorted(RULES))})") from None
