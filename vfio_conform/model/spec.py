"""The rule catalogue: each rule the suites check, with a stable id, its level and its source.

Suites mark tests with `@pytest.mark.vc_spec(<id>)`, failures quote the rule, fault knobs name it.

Every rule says where it comes from (`basis`):

- `uapi`: stated by include/uapi/linux/vfio.h (the section is cited);
- `reference`: not spelled out in vfio.h but the documented contract of the reference
  implementation every driver shares (the vfio core in drivers/vfio/vfio_main.c, vfio-pci-core, or
  the set_state loop all 6.12 migration drivers use; file and function cited);
- `profile`: what the vendor's profile declares about its own device.

Its `level` is `must` (a violation fails the test) or `should` (a recommendation: vfio.h says
"should", or the rule is stricter than the uAPI and its reference). A `should` that is not met is
never a failure: `checks.expect` records it and the test passes with a "should not met" note that
reaches the result store and the report (see plugin/hooks.py).

`python3 -m vfio_conform.model.spec --markdown` renders the catalogue (docs/rules.md).
"""
from __future__ import annotations

import dataclasses
import sys

MUST, SHOULD = "must", "should"
UAPI, REFERENCE, PROFILE = "uapi", "reference", "profile"
VFIO_H = "include/uapi/linux/vfio.h (6.12)"
VFIO_H_V1 = "include/uapi/linux/vfio.h (5.15)"
_MIG_STATE = f"{VFIO_H}, enum vfio_device_mig_state comment"
_DEVICE_STATE = f"{VFIO_H}, VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE"
_PRECOPY_INFO = f"{VFIO_H}, VFIO_MIG_GET_PRECOPY_INFO"
_REGION_INFO = f"{VFIO_H}, VFIO_DEVICE_GET_REGION_INFO"
_DMA_LOGGING = f"{VFIO_H}, VFIO_DEVICE_FEATURE_DMA_LOGGING_*"
_NEXT_STATE = "drivers/vfio/vfio_main.c vfio_mig_get_next_state() (6.12)"
_DRIVER_FILES = ("the migration drivers' data_fd file_operations in 6.12 (mlx5 "
                 "drivers/vfio/pci/mlx5/main.c, hisi_acc, pds, qat, samples/vfio-mdev/mtty.c)")


#: How the harness reaches a device's migration data: the kernel's data fd (kernel and sim backends,
#: a real fd with its own flags, modes, poll and seek semantics) or vfio-user messages
#: (VFIO_USER_MIG_DATA_READ/WRITE; the data fd the harness holds is a stand-in made by the client).
DATA_FD, MESSAGES = "data-fd", "messages"
TRANSPORTS = frozenset({DATA_FD, MESSAGES})
FD_ONLY = frozenset({DATA_FD})


#: The vfio-user protocol's own specification (it lives in QEMU's tree); its sections are cited.
VFIO_USER_SPEC = "docs/interop/vfio-user.rst (QEMU; vfio-user protocol 0.2)"
_VU = VFIO_USER_SPEC
#: What vfio-user does not offer, from the specification's Commands and Device Features tables.
NO_MIG_DATA_SIZE = ("MIG_DATA_SIZE (feature 9) is not a vfio-user feature: the specification's "
                    f"Device Features table offers features 1, 2, 6, 7 and 8 only ({_VU}, Device Features)")
NO_PRECOPY_INFO = ("vfio-user has no message for VFIO_MIG_GET_PRECOPY_INFO (nor a data fd to issue it "
                   f"on): migration data moves in MIG_DATA_READ/WRITE only ({_VU}, Commands)")
NO_MIGRATION_REGION = (f"vfio-user migrates through DEVICE_FEATURE and MIG_DATA_READ/WRITE ({_VU}); the "
                       "v1 migration region is a kernel uAPI of Linux 5.x")
NO_KERNEL = ("a vfio-user server runs in user space: it cannot make the kernel warn; its sanitizer "
             "reports are checked instead (server.no-sanitizer-report)")
NO_DMA_START_CHECKS = ("the argument checks are those of the kernel's VFIO core; neither vfio.h nor the "
                       f"vfio-user specification requires them, and the latter allows zero ranges ('A value "
                       f"of zero indicates that all writes should be logged', {_VU}, DMA_LOGGING_START)")
NO_HOST_MMAP_CHECK = ("on vfio-user the client maps the fd the server passed with GET_REGION_INFO: mmap() is "
                      "the client's own system call on that fd, which the server cannot refuse or limit "
                      f"({_VU}, Region Information); only the sparse areas it announces are checked "
                      "(region.sparse-areas-valid)")

#: The vfio-user specification's section for each area of rules (longest id prefix wins).
MESSAGES_SOURCES = {
    "fsm.": f"{_VU}, VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE (the states and the Direct and Complex State "
            "Transitions, a subset of <linux/vfio.h>)",
    "fsm.flags-": f"{_VU}, VFIO_DEVICE_FEATURE_MIGRATION ('These flags are interpreted in the same way as VFIO')",
    "fsm.feature-get-set-einval": f"{_VU}, VFIO_USER_DEVICE_FEATURE ('GET and SET are mutually exclusive, "
                                  "except for use with PROBE')",
    "walk.": f"{_VU}, VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE and VFIO_USER_MIG_DATA_READ/WRITE",
    "session.": f"{_VU}, Direct State Transitions (which arcs terminate the data transfer session)",
    "stream.": f"{_VU}, VFIO_USER_MIG_DATA_READ/WRITE ('the migration data is treated like a stream')",
    "stream.round-trip": f"{_VU}, VFIO_USER_MIG_DATA_WRITE and Direct State Transitions (STOP -> RESUMING, "
                         "RESUMING -> STOP)",
    "resume.": f"{_VU}, Direct State Transitions (RESUMING -> STOP: 'If the delivered data is found to be "
               "incomplete, inconsistent, or otherwise invalid, fail the SET command')",
    "roundtrip.": f"{_VU}, Direct State Transitions (STOP -> RESUMING, RESUMING -> STOP)",
    "precopy.dirty-carried": f"{_VU}, Direct State Transitions (PRE_COPY -> STOP_COPY: 'Continue to transfer "
                             "migration data')",
    "mismatch.": f"{_VU}, Direct State Transitions (RESUMING -> STOP fails on inconsistent data)",
    "reset.": f"{_VU}, VFIO_USER_DEVICE_RESET and the ERROR state ('VFIO_USER_DEVICE_RESET must be used to "
              "return back to RUNNING'); the state model is vfio.h's",
    "device.": f"{_VU}, VFIO_USER_DEVICE_GET_INFO (VFIO_DEVICE_FLAGS_) and VFIO_USER_DEVICE_RESET",
    "region.": f"{_VU}, VFIO_USER_DEVICE_GET_REGION_INFO, Sparse Regions and VFIO_USER_REGION_READ/WRITE",
    "region-info.": f"{_VU}, VFIO_USER_DEVICE_GET_REGION_INFO and Message sizes (argsz)",
    "protocol.": f"{_VU}, Device Features (migration is VFIO_DEVICE_FEATURE_MIGRATION)",
    "feature.": f"{_VU}, VFIO_USER_DEVICE_FEATURE and Device Features",
    "dma.": f"{_VU}, VFIO_DEVICE_FEATURE_DMA_LOGGING_START / STOP / REPORT",
    "consumer.": f"{_VU}; the consumer's kernel path (QEMU's vfio-user client has no migration)",
    "server.": f"{_VU}, Security Considerations ('validate input and prevent against ... buffer overflow')",
}


def _messages_source(rule_id: str) -> str:
    best = max((p for p in MESSAGES_SOURCES if rule_id.startswith(p)), key=len, default="")
    return MESSAGES_SOURCES.get(best, _VU)


@dataclasses.dataclass(frozen=True)
class Rule:
    id: str
    text: str
    source: str = VFIO_H
    level: str = MUST        # "must" fails a test; "should" is recorded, never a failure
    basis: str = ""          # uapi | reference | profile; inferred from `source` when empty
    severity: str = ""       # the former name of `level` (accepted as a keyword; always equals level)
    #: the transports the rule applies to (see TRANSPORTS); default: every transport
    transports: frozenset[str] = frozenset()
    #: where the rule comes from on the vfio-user transport (a section of the vfio-user
    #: specification); filled from the rule's area (MESSAGES_SOURCES) when empty
    messages_source: str = ""
    #: why a transport does not offer what the rule checks: ((transport, reason), ...). A test that
    #: checks such a rule is not-supported on that transport with the reason (the transport has no
    #: such feature or message; nothing is invented in its place).
    not_offered: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.severity and self.level == MUST:
            object.__setattr__(self, "level", self.severity)
        object.__setattr__(self, "severity", self.level)
        if self.level not in (MUST, SHOULD):
            raise ValueError(f"rule {self.id}: level {self.level!r} is not 'must' or 'should'")
        if not self.basis:
            basis = (PROFILE if self.source == "profile"
                     else UAPI if self.source.startswith("include/uapi/") else REFERENCE)
            object.__setattr__(self, "basis", basis)
        if self.basis not in (UAPI, REFERENCE, PROFILE):
            raise ValueError(f"rule {self.id}: basis {self.basis!r} is not uapi, reference or profile")
        if not self.transports:
            object.__setattr__(self, "transports", TRANSPORTS)
        if self.not_offered:
            object.__setattr__(self, "transports",
                               frozenset(self.transports) - {t for t, _ in self.not_offered})
        if not set(self.transports) <= TRANSPORTS:
            raise ValueError(f"rule {self.id}: transports {sorted(self.transports)} not within {sorted(TRANSPORTS)}")
        if MESSAGES in self.transports and not self.messages_source:
            object.__setattr__(self, "messages_source", _messages_source(self.id))

    def applies_to(self, transport: str) -> bool:
        """True if the rule can be checked on a device reached through `transport`."""
        return transport in self.transports

    def absent_on(self, transport: str) -> str:
        """Why `transport` does not offer what this rule checks ('' when it does or when the rule is
        only about an object the transport lacks, such as the kernel's data fd)."""
        return next((why for t, why in self.not_offered if t == transport), "")

    def source_on(self, transport: str) -> str:
        """The rule's source on `transport` (the vfio-user spec for messages), '' where it does not apply."""
        if transport not in self.transports:
            return ""
        return self.messages_source if transport == MESSAGES else self.source


_RULES = [
    Rule("fsm.legal-arc", "A SET to a state the device supports, on a path the FSM allows, succeeds.",
         f"{_MIG_STATE} (the arcs a driver must implement for its migration flags)"),
    Rule("fsm.state-after-set", "After a successful SET, GET reports the requested state.",
         f"{_DEVICE_STATE} (SET changes device_state to the requested value before returning)"),
    Rule("fsm.data-fd-on-opening-arc",
         "A new data_fd comes back exactly on STOP->STOP_COPY, RUNNING->PRE_COPY, "
         "RUNNING_P2P->PRE_COPY_P2P and STOP->RESUMING (as the last step of the path).",
         f"{_MIG_STATE} (the arcs that return a data_fd); last step: {_NEXT_STATE}"),
    Rule("fsm.no-data-fd-otherwise", "Every other SET (and every GET) reports data_fd = -1.",
         f"{_DEVICE_STATE} (data_fd is -1 when the arc returns no fd)"),
    Rule("fsm.data-fd-cloexec", "The data_fd is installed with O_CLOEXEC.",
         "drivers/vfio/vfio_main.c vfio_ioctl_device_feature_mig_device_state() (6.12)"),
    Rule("fsm.same-state-noop",
         "A SET to the current state succeeds, returns no data_fd and changes nothing (a "
         "recommendation: vfio.h does not say it; every 6.12 driver's set_state loop steps while "
         "the state differs, so the request is a zero-arc no-op there).",
         "driver loop: the set_state loops of mlx5 (mlx5vf_pci_set_device_state), "
         "samples/vfio-mdev/mtty.c mtty_set_state(), hisi_acc, pds, qat (6.12)", SHOULD),
    Rule("fsm.illegal-arc-einval",
         "A SET to a state the device does not support, to ERROR, or along a blocked arc fails with EINVAL.",
         f"{_MIG_STATE} (such a request must fail); errno: {_NEXT_STATE}"),
    Rule("fsm.out-of-range-einval", "A SET to a value >= VFIO_DEVICE_STATE_NR fails with EINVAL.",
         _NEXT_STATE),
    Rule("fsm.failed-set-keeps-state",
         "A SET rejected before any step leaves the device in the state it was in.",
         f"{_DEVICE_STATE} (after a failed SET the device is in the original state or one along "
         "the path; a rejected request has no path)"),
    Rule("fsm.flags-valid",
         "MIGRATION reports STOP_COPY and only the defined combinations of P2P and PRE_COPY.",
         f"{VFIO_H}, VFIO_DEVICE_FEATURE_MIGRATION (STOP_COPY is mandatory; the four combinations)"),
    Rule("fsm.flags-match-profile", "The device reports the migration flags its profile declares.",
         "profile"),
    Rule("stream.stop-copy-eof",
         "In STOP_COPY, end of stream is read() returning 0, and ENOMSG is not returned.",
         f"{_MIG_STATE} (PRE_COPY_P2P -> STOP_COPY: end of stream means the whole state was sent); "
         f"{_PRECOPY_INFO} (ENOMSG only in the pre-copy states)"),
    Rule("stream.segmentation-free",
         "The stream is opaque and ordered: its bytes do not depend on the size of the reads.",
         f"{_DEVICE_STATE} (data_fd is a stream of opaque data)"),
    Rule("stream.saving-fd-not-writable", "The saving data_fd is read-only: write() fails (EBADF).",
         f"{_MIG_STATE} (the saving fd is read); errno: {_DRIVER_FILES} open the fd O_RDONLY"),
    Rule("stream.resuming-fd-not-readable", "The resuming data_fd is write-only: read() fails (EBADF).",
         f"{_MIG_STATE} (the resuming fd is written); errno: {_DRIVER_FILES} open the fd O_WRONLY"),
    Rule("stream.no-seek", "The data_fd is a stream: pread/pwrite fail with ESPIPE.",
         f"{_DRIVER_FILES} call stream_open()"),
    Rule("stream.ended-session-enodev",
         "After the session ends (or reset), read()/write() on its data_fd fail with ENODEV.",
         f"{_DRIVER_FILES} disable the file when the session ends or on reset"),
    Rule("stream.data-size-estimate",
         "MIG_DATA_SIZE estimates the STOP_COPY stream length (within the profile's tolerance).",
         f"{VFIO_H}, VFIO_DEVICE_FEATURE_MIG_DATA_SIZE"),
    Rule("stream.round-trip", "A stream saved from a device is accepted by a compatible device "
         "in RESUMING, and RESUMING->STOP succeeds.",
         f"{_MIG_STATE} (STOP -> RESUMING takes the data of one saving fd of a compatible device)"),
    Rule("resume.incomplete-stream-fails",
         "RESUMING->STOP must fail if the written data is incomplete or invalid.",
         f"{_MIG_STATE} (RESUMING -> STOP)"),
    Rule("precopy.info-only-in-precopy",
         "VFIO_MIG_GET_PRECOPY_INFO fails with EINVAL outside PRE_COPY and PRE_COPY_P2P.",
         f"{_PRECOPY_INFO} (valid in the pre-copy states); errno: {_DRIVER_FILES}"),
    Rule("precopy.initial-bytes-decrease",
         "initial_bytes starts non-zero and only decreases as the user reads the pre-copy stream "
         "(vfio.h: it \"should\").", _PRECOPY_INFO, SHOULD),
    Rule("precopy.enomsg-at-temporary-end",
         "At a temporary end of the pre-copy stream read() should fail with ENOMSG (only mlx5 does in "
         "6.12; a profile may make it a must with migration.precopy_enomsg).", _PRECOPY_INFO, SHOULD),
    Rule("reset.returns-running",
         "VFIO_DEVICE_RESET returns the migration state to RUNNING and ends any session.",
         f"{_MIG_STATE} (reset returns the device to RUNNING; the only asynchronous state change); "
         "ends sessions: vfio-pci-core variant drivers' reset_done handlers and mtty reset (6.12)"),
    # -- regions, protocol detection, layout mismatch --------------------------------------------
    Rule("region.info-consistent",
         "GET_REGION_INFO reports each region at its own offset in the device fd (no overlap), "
         "flags within READ|WRITE|MMAP|CAPS, MMAP only with READ or WRITE, and a page-aligned offset "
         "when MMAP is set.", f"{_REGION_INFO} (offset, flags); mmap(2) needs a page-aligned offset"),
    Rule("region.cap-chain-well-formed",
         "With VFIO_REGION_INFO_FLAG_CAPS, cap_offset and every next lie inside argsz past the 32-byte "
         "struct, each header fits, and the chain ends (0) without a loop.",
         f"{VFIO_H}, struct vfio_info_cap_header"),
    Rule("region.sparse-areas-valid",
         "Sparse-mmap areas are page-aligned, non-empty and inside the region; only MMAP regions carry them.",
         f"{VFIO_H}, VFIO_REGION_INFO_CAP_SPARSE_MMAP (the mmap-able areas of the region)"),
    Rule("region.matches-profile", "The region has the size and MMAP capability its profile declares.",
         "profile"),
    Rule("region.mmap-coherent",
         "pread and an mmap of the same range return the same bytes; a write through one is seen "
         "through the other. Compared only where both reach the device: not in a range the driver "
         "answers read()/write() for itself (vfio-pci: the MSI-X table named by the device's MSI-X "
         "capability, which read() fills with 0xff while an mmap maps the device).",
         "drivers/vfio/pci/vfio_pci_core.c vfio_pci_core_mmap() and vfio_pci_rdwr.c "
         "vfio_pci_bar_rw(): both reach the same BAR, except [msix_offset, +msix_size) of msix_bar, "
         "which vfio_pci_core_do_io_rw() skips (6.12)"),
    Rule("region.last-byte-accessible", "An access that ends at the last byte of a region succeeds.",
         f"{_REGION_INFO} (size; READ/WRITE flags)"),
    Rule("region.out-of-bounds-contained",
         "An access that crosses the end of a region either fails or transfers exactly the bytes "
         "inside the region and returns that count; no byte past the end is read or written. An "
         "access starting at or past the end fails or returns 0.",
         f"{_REGION_INFO} (size) with POSIX pread/pwrite (a short count is a valid result); "
         "reference: drivers/vfio/pci/vfio_pci_rdwr.c vfio_pci_bar_rw() clamps, vfio_pci_config.c "
         "vfio_pci_config_rw() fails (6.12)"),
    Rule("region.mmap-invalid-fails",
         "mmap of a range larger than the region, not page-aligned, outside the sparse areas, or of a "
         "region without MMAP fails.",
         f"{VFIO_H}, VFIO_REGION_INFO_FLAG_MMAP / CAP_SPARSE_MMAP; "
         "drivers/vfio/pci/vfio_pci_core.c vfio_pci_core_mmap() (6.12)"),
    Rule("region.access-widths",
         "Accesses of the widths the profile lists succeed (and round-trip); unaligned accesses "
         "behave as the profile says.", "profile"),
    Rule("region.peer-layout-declared",
         "Source and destination report the same region layout, unless the profile declares "
         "them different (regions.peer_layout).", "profile"),
    Rule("mismatch.resume-refused",
         "A stream saved by a device with a different region layout is refused on resume (write() "
         "or RESUMING->STOP fails); it never loads silently.",
         f"{_MIG_STATE} (STOP -> RESUMING needs a compatible device; RESUMING -> STOP fails on "
         "invalid data)"),
    Rule("protocol.matches-profile",
         "The device speaks the migration protocol its profile declares: v1 = a region with TYPE cap "
         "(3, 1), v2 = the MIGRATION feature.", "profile"),
    Rule("v1.header-layout",
         "The v1 migration region starts with the 32-byte vfio_device_migration_info: reserved reads 0, "
         "data_offset is non-zero and inside the region, and fields are accessed at native width.",
         f"{VFIO_H_V1}, struct vfio_device_migration_info"),
    Rule("v1.native-width",
         "Accesses to vfio_device_migration_info fields at other than their native width and "
         "alignment should fail.", f"{VFIO_H_V1}, struct vfio_device_migration_info", SHOULD),
    Rule("v1.state-bits",
         "Every legal device_state (000, 001, 010, 011, 100) can be set and reads back; 101, 110 and "
         "111 are rejected and the state is unchanged.", f"{VFIO_H_V1}, device_state bits"),
    Rule("v1.save-loop",
         "Saving: pending_bytes, data_offset and data_size drive a loop that ends with pending_bytes 0 "
         "in stop-and-copy and yields the whole device state.", f"{VFIO_H_V1}, saving sequence"),
    Rule("v1.chunk-in-region",
         "Each staged chunk lies inside the migration region: data_offset past the header and "
         "data_offset + data_size <= region size.", f"{VFIO_H_V1}, region layout"),
    Rule("v1.resume-loop",
         "Resuming: chunks written at data_offset and committed by writing data_size are loaded, and "
         "the destination re-saves the source's stream.", f"{VFIO_H_V1}, resuming sequence"),
    Rule("v1.mmap-slow-identical",
         "Saving through the mmapped data section and through pread gives byte-identical streams.",
         f"{VFIO_H_V1}, region layout (the data section may be mmapped; using mmap is optional for "
         "the user)"),
    Rule("v1.short-chunks-accepted",
         "A destination whose data section is smaller than the source's chunk should accept the chunk "
         "split into region-sized writes and load the whole stream (the v1 header asks the user to "
         "keep each chunk's size; QEMU splits chunks for a smaller destination).",
         "hw/vfio/migration.c vfio_load_buffer() (QEMU v1, the reference user)", SHOULD),
    # -- depth suites ------------------------------------------------------------------------------
    Rule("roundtrip.state-preserved",
         "After STOP_COPY on the source, RESUMING -> STOP -> RUNNING on the destination, the "
         "destination holds the source's device state (checked by the profile's verify hook).",
         f"{_MIG_STATE} (RESUMING -> STOP loads the written state)"),
    Rule("precopy.dirty-carried",
         "State changed while the source is in PRE_COPY reaches the destination: the data read in "
         "PRE_COPY plus the STOP_COPY remainder carry the final state.",
         f"{_MIG_STATE} (the saving group shares one stream; its end means the whole state was sent)"),
    Rule("precopy.dirty-bytes-sane",
         "dirty_bytes starts at 0 when the pre-copy session opens, and at the temporary end of the "
         "pre-copy data initial_bytes and dirty_bytes are both 0.", _PRECOPY_INFO),
    Rule("resume.hostile-stream-refused",
         "A truncated, extended, corrupted, foreign or empty stream ends in an error at write() or at "
         "RESUMING -> STOP; it never loads silently, and a reset recovers the device.",
         f"{_MIG_STATE} (RESUMING -> STOP fails on incomplete or invalid data; reset aborts a resume)"),
    Rule("resume.corrupt-header-refused",
         "RESUMING -> STOP must fail when the stream is invalid, even if write() already reported "
         "the bad header and the byte count is right.", f"{_MIG_STATE} (RESUMING -> STOP)"),
    Rule("resume.segmentation-free",
         "On RESUMING the write segmentation need not match the source's reads: a valid stream "
         "written in chunks of any size resumes.", f"{_DEVICE_STATE} (data_fd is a stream)"),
    Rule("datasize.any-state", "VFIO_DEVICE_FEATURE_MIG_DATA_SIZE GET works in every migration state.",
         f"{VFIO_H}, VFIO_DEVICE_FEATURE_MIG_DATA_SIZE (can be called in each device state)"),
    Rule("dma.start-args",
         "DMA_LOGGING_START fails with EINVAL for no ranges, unaligned or overlapping ranges, E2BIG "
         "for more than PAGE_SIZE/16 ranges and EOVERFLOW for iova + length overflow.",
         "drivers/vfio/vfio_main.c vfio_ioctl_device_feature_logging_start() (6.12)"),
    Rule("dma.report-page-size",
         "DMA_LOGGING_REPORT fails with EINVAL for a page_size below 4096 or not a power of two.",
         "drivers/vfio/vfio_main.c vfio_ioctl_device_feature_logging_report() (6.12)",
         messages_source=f"{_VU}, VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT ('page_size ... must be a power of "
         "two'; the 4096 minimum is the kernel core's and is not checked there)"),
    Rule("dma.start-once", "A second DMA_LOGGING_START without DMA_LOGGING_STOP is not allowed.",
         f"{_DMA_LOGGING} (START)"),
    Rule("dma.report-needs-start", "DMA_LOGGING_REPORT without a running DMA_LOGGING_START fails.",
         f"{_DMA_LOGGING} (REPORT)"),
    Rule("dma.report-only-sets-bits",
         "DMA_LOGGING_REPORT only sets bits of the user's bitmap (never clears them) and writes "
         "nothing past length / page_size bits.",
         "drivers/vfio/iova_bitmap.c iova_bitmap_set() via vfio_ioctl_device_feature_logging_report() (6.12)"),
    Rule("reset.aborts-resuming",
         "VFIO_DEVICE_RESET is the way to abort RESUMING: afterwards the device is RUNNING and a new "
         "resume of a complete stream succeeds (the aborted data is gone).",
         f"{_MIG_STATE} (aborting a resume requires a device reset)"),
    Rule("reset.device-usable",
         "After VFIO_DEVICE_RESET the device migrates again: a full STOP_COPY save is non-empty and "
         "resumes on a peer.", f"{_MIG_STATE} (reset returns the device to RUNNING)"),
    Rule("session.close-keeps-state",
         "Closing a data_fd does not change the migration state.",
         f"{_MIG_STATE} (the state never changes asynchronously, except by VFIO_DEVICE_RESET)"),
    Rule("session.close-device-ends",
         "Closing the device (the last close of its device fd: the driver's close_device) ends its "
         "migration session: read()/write() on a data_fd kept open past the close fail with ENODEV, "
         "also once the device is opened again, and the reopened device holds no session of the "
         "old one (a device may be handed to another user after its close).",
         "the drivers' close_device paths (6.12): samples/vfio-mdev/mtty.c mtty_close -> "
         "mtty_disable_files; drivers/vfio/pci/mlx5/main.c mlx5vf_pci_close_device -> "
         "mlx5vf_cmd_close_migratable (mlx5vf_disable_fds); drivers/vfio/pci/hisilicon/"
         "hisi_acc_vfio_pci.c hisi_acc_vfio_pci_close_device -> hisi_acc_vf_disable_fds; "
         "drivers/vfio/pci/pds/vfio_dev.c pds_vfio_close_device -> pds_vfio_put_restore_file, "
         f"pds_vfio_put_save_file; ENODEV on a disabled file: {_DRIVER_FILES}"),
    Rule("walk.model-agreement",
         "In any sequence of SETs, reads, writes, closes and resets, a live session's data_fd works: "
         "reads return data, 0 or (pre-copy) ENOMSG and writes of a valid stream are accepted.",
         f"{_MIG_STATE} and {_DEVICE_STATE} (a session's fd carries its stream until it ends)"),
    # -- spec fidelity: rules the catalogue lacked (keep this block last) -------------------------
    Rule("fsm.set-writeback",
         "A SET writes back the requested device_state (success or failure: it never shows the state "
         "reached) and data_fd = -1 unless a session was opened.",
         "drivers/vfio/vfio_main.c (6.12) vfio_ioctl_device_feature_mig_device_state(); vfio-uapi.md 4.1"),
    Rule("fsm.get-state-ok", "GET MIG_DEVICE_STATE succeeds and reports a defined state.",
         "include/uapi/linux/vfio.h (6.12) VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE"),
    Rule("fsm.feature-get-set-einval",
         "VFIO_DEVICE_FEATURE with both GET and SET (no PROBE) fails with EINVAL and changes nothing.",
         "include/uapi/linux/vfio.h (6.12) VFIO_DEVICE_FEATURE; drivers/vfio/vfio_main.c"),
    Rule("fsm.failed-path-on-path",
         "A SET that fails part-way along a multi-arc path leaves the device in the state it was in, "
         "in a state along the path, or in ERROR.",
         "include/uapi/linux/vfio.h (6.12) VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE ('If this function "
         "fails then current device_state may be the original operating state or some other state "
         "along the combination transition path'; any -> ERROR)"),
    Rule("session.rejected-set-keeps-session",
         "A SET rejected before any step keeps the live session: its data_fd still reads (saving) or "
         "the written data still commits (resuming).",
         "include/uapi/linux/vfio.h (6.12): sessions end only on the arcs that terminate them"),
    Rule("session.saving-group-same-fd",
         "Moving inside the saving group (PRE_COPY <-> PRE_COPY_P2P, PRE_COPY(_P2P) -> STOP_COPY) keeps "
         "the session: no new data_fd, and the old one still reads.",
         "include/uapi/linux/vfio.h (6.12) enum vfio_device_mig_state (PRE_COPY_P2P -> STOP_COPY: "
         "'the data transfer session continues')"),
    Rule("stream.stop-copy-poll-readable",
         "At the end of the STOP_COPY data poll() reports the saving data_fd readable.",
         "include/uapi/linux/vfio.h (6.12) VFIO_MIG_GET_PRECOPY_INFO ('a permanent end of stream "
         "signaled in the usual way by read() always returning 0 and poll always returning readable')"),
    Rule("precopy.info-works-in-precopy",
         "On a device reporting PRE_COPY, VFIO_MIG_GET_PRECOPY_INFO on the saving data_fd succeeds in "
         "PRE_COPY and in PRE_COPY_P2P.",
         "include/uapi/linux/vfio.h (6.12) VFIO_MIG_GET_PRECOPY_INFO ('Support for this ioctl is "
         "mandatory if a driver claims to support VFIO_MIGRATION_PRE_COPY')"),
    Rule("precopy.info-argsz-einval",
         "VFIO_MIG_GET_PRECOPY_INFO with argsz below sizeof(struct vfio_precopy_info) (24) fails with "
         "EINVAL.",
         "include/uapi/linux/vfio.h (6.12) argsz convention; every 6.12 driver checks argsz < minsz"),
    Rule("precopy.info-enotty-on-resuming",
         "VFIO_MIG_GET_PRECOPY_INFO on a resuming data_fd fails with ENOTTY (the ioctl belongs to the "
         "saving fd; a file without it gives ENOTTY).",
         "include/uapi/linux/vfio.h (6.12) VFIO_MIG_GET_PRECOPY_INFO; fs/ioctl.c vfs_ioctl()"),
    Rule("precopy.info-flags-opt-in",
         "The flags VFIO_MIG_GET_PRECOPY_INFO returns carry no bit the caller did not opt in to: none "
         "without VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2, at most VFIO_PRECOPY_INFO_REINIT with it.",
         "include/uapi/linux/vfio.h (6.12: flags reserved); VFIO_PRECOPY_INFO_REINIT series "
         "(Yishai Hadas, 2026; vfio-uapi.md 4.7)"),
    Rule("precopy.reinit-semantics",
         "After the MIG_PRECOPY_INFOv2 opt-in, VFIO_PRECOPY_INFO_REINIT comes with dirty_bytes reset to "
         "0 (initial_bytes may rise again); without REINIT, initial_bytes does not rise.",
         "VFIO_PRECOPY_INFO_REINIT series (Yishai Hadas, 2026; vfio-uapi.md 4.7)"),
    Rule("feature.mig-enotty-without-mig-ops",
         "A device without migration support fails VFIO_DEVICE_FEATURE MIGRATION, MIG_DEVICE_STATE and "
         "MIG_DATA_SIZE (also PROBE) with ENOTTY.",
         "drivers/vfio/vfio_main.c (6.12): no mig_ops -> -ENOTTY; vfio-uapi.md 4.1"),
    Rule("feature.log-enotty-without-log-ops",
         "A device without DMA logging fails VFIO_DEVICE_FEATURE DMA_LOGGING_START, STOP and REPORT "
         "(also PROBE) with ENOTTY.",
         "drivers/vfio/vfio_main.c (6.12): no log_ops -> -ENOTTY; vfio-uapi.md 4.1"),
    Rule("dma.start-writes-page-size",
         "DMA_LOGGING_START writes back the page size it selected: a power of two of at least 4096, "
         "the granule its reports use.",
         "include/uapi/linux/vfio.h (6.12) DMA_LOGGING_START ('On output the device will return the "
         "page size it selected')"),
    Rule("dma.dirty-pages-reported",
         "Pages the device wrote inside a logged range are reported dirty at any power-of-two REPORT "
         "page size (bits rescaled), and pages it did not write since the log was last read are not.",
         "include/uapi/linux/vfio.h (6.12) DMA_LOGGING_START/REPORT ('Each DMA that the device "
         "initiates inside the range will be logged'; 'Only DMA WRITEs are logged')"),
    Rule("dma.report-clears-log",
         "DMA_LOGGING_REPORT clears the log for the range it reads: a second REPORT with no DMA in "
         "between reports no bit.",
         "include/uapi/linux/vfio.h (6.12) DMA_LOGGING_REPORT ('During querying the log is cleared "
         "for the IOVA range')"),
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
    Rule("consumer.qemu-converges",
         "MIG_DATA_SIZE works in the pre-copy states: QEMU asks it in every pre-copy iteration for "
         "its exact pending size (vfio_state_pending_exact: the stop-copy length plus PRECOPY_INFO's "
         "initial and dirty bytes) and, when it fails, reports nothing but counts 100 GiB "
         "(VFIO_MIG_STOP_COPY_SIZE), so the pending size never falls below the switch-over "
         "threshold and the migration never converges.",
         _QEMU + " (vfio_state_pending_exact, vfio_query_stop_copy_size); include/uapi/linux/vfio.h "
         "(VFIO_DEVICE_FEATURE_MIG_DATA_SIZE)"),
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
    Rule("reset.flr-running",
         "A Function Level Reset started through config space (Device Control 'Initiate FLR' on a "
         "function whose PCI Express Device Capabilities offer it) leaves the device in RUNNING and "
         "ends every migration session: the old data_fd gives ENODEV.",
         "drivers/vfio/pci/vfio_pci_config.c vfio_exp_config_write (FLR through "
         "pci_try_reset_function); the variant drivers' reset_done handlers (mlx5, hisi_acc, pds, "
         "qat: state RUNNING, migration files disabled); include/uapi/linux/vfio.h (reset leaves "
         "RUNNING)"),
    Rule("dma.consumer-cycle",
         "DMA_LOGGING_START of valid ranges succeeds and writes back the page size the device "
         "selected, a power of two of at least 4096; DMA_LOGGING_REPORT with that page size "
         "succeeds; DMA_LOGGING_STOP ends logging (cloud-hypervisor's live-migration cycle).",
         "include/uapi/linux/vfio.h; drivers/vfio/vfio_main.c; " + _CH),
]

_RULES += _CONSUMER_RULES

# -- the kernel log: a driver that warns is not conformant ------------------------------------------
_RULES += [
    Rule("kernel.no-warnings",
         "While a test drives the device the kernel logs no WARN, BUG, oops, lockdep or refcount "
         "splat (nor any other report of a kernel bug) and sets no new taint flag: a kernel warning "
         "is a driver (or kernel) bug even when every ioctl returned the right value.",
         "include/asm-generic/bug.h (WARN*(): significant kernel issues that need prompt attention); "
         "Documentation/process/coding-style.rst 22 (WARN*() is for this-should-never-happen "
         "situations); Documentation/admin-guide/tainted-kernels.rst"),
]

#: Rules about the kernel's data fd object itself (its fd flags and access mode, poll, seeking, the
#: fd number written back, an ended session's fd, closing it): a vfio-user server has no data fd
#: (its data moves in MIG_DATA_READ/WRITE messages), so they are not-supported there.
_FD_RULES = frozenset({
    "fsm.data-fd-on-opening-arc", "fsm.no-data-fd-otherwise", "fsm.data-fd-cloexec",
    "stream.saving-fd-not-writable", "stream.resuming-fd-not-readable", "stream.no-seek",
    "stream.ended-session-enodev", "stream.stop-copy-poll-readable", "session.close-keeps-state",
    "session.close-device-ends",
    "session.saving-group-same-fd", "resume.close-keeps-data"})
_RULES = [dataclasses.replace(r, transports=FD_ONLY) if r.id in _FD_RULES else r for r in _RULES]

#: Rules about what vfio-user does not offer at all (a feature, a message, the kernel's core checks):
#: their tests are not-supported on a vfio-user device, with the reason.
_ENOMSG_ABSENT = ("vfio-user's MIG_DATA_READ ends the available data with a short reply ('If this is less "
                  f"than the requested size, there is no more migration data to read', {_VU}, "
                  "VFIO_USER_MIG_DATA_READ); the data fd's ENOMSG has no counterpart")
_ABSENT_ERRNO = ("the errno of an absent feature is the kernel core's (drivers/vfio/vfio_main.c); the "
                 f"vfio-user specification does not define it ({_VU}, VFIO_USER_DEVICE_FEATURE)")
_NOT_ON_MESSAGES = {
    "stream.data-size-estimate": NO_MIG_DATA_SIZE, "datasize.any-state": NO_MIG_DATA_SIZE,
    "consumer.qemu-data-size-nonzero": NO_MIG_DATA_SIZE, "consumer.qemu-converges": NO_MIG_DATA_SIZE,
    "precopy.info-only-in-precopy": NO_PRECOPY_INFO, "precopy.initial-bytes-decrease": NO_PRECOPY_INFO,
    "precopy.dirty-bytes-sane": NO_PRECOPY_INFO, "precopy.info-works-in-precopy": NO_PRECOPY_INFO,
    "precopy.info-argsz-einval": NO_PRECOPY_INFO, "precopy.info-enotty-on-resuming": NO_PRECOPY_INFO,
    "precopy.info-flags-opt-in": NO_PRECOPY_INFO, "precopy.reinit-semantics": NO_PRECOPY_INFO,
    "consumer.qemu-initial-data-sent": NO_PRECOPY_INFO, "consumer.qemu-precopy-accounting": NO_PRECOPY_INFO,
    "precopy.enomsg-at-temporary-end": _ENOMSG_ABSENT,
    "dma.start-args": NO_DMA_START_CHECKS,
    "feature.mig-enotty-without-mig-ops": _ABSENT_ERRNO, "feature.log-enotty-without-log-ops": _ABSENT_ERRNO,
    "region.mmap-invalid-fails": NO_HOST_MMAP_CHECK,
    "kernel.no-warnings": NO_KERNEL,
    **{r.id: NO_MIGRATION_REGION for r in _RULES if r.id.startswith("v1.")},
}
_RULES = [dataclasses.replace(r, not_offered=((MESSAGES, _NOT_ON_MESSAGES[r.id]),))
          if r.id in _NOT_ON_MESSAGES else r for r in _RULES]

# -- vfio-user and the edges of DMA logging -----------------------------------------------------------
_TYPE1_WRAP = ("drivers/vfio/vfio_iommu_type1.c vfio_dma_do_map() (6.12: 'Don't allow IOVA or virtual "
               "address wrap', EINVAL)")
_RULES += [
    Rule("dma.start-valid",
         "DMA_LOGGING_START of page-aligned, non-overlapping ranges of (on vfio-user: DMA-mapped) memory "
         "succeeds.",
         f"{VFIO_H}, DMA_LOGGING_START (the ranges to log)",
         messages_source=f"{_VU}, VFIO_USER_DMA_MAP and VFIO_DEVICE_FEATURE_DMA_LOGGING_START"),
    Rule("dma.start-page-size-hint",
         "A page_size hint the device cannot track at (e.g. larger than a DMA region mapped besides the "
         "logged ranges, which are aligned to it) does not fail DMA_LOGGING_START: the device picks a page "
         "size it supports and writes it back.",
         f"{VFIO_H}, DMA_LOGGING_START ('If the device cannot do the hinted page size then it's the driver "
         "choice which page size to pick based on its support')",
         messages_source=f"{_VU}, VFIO_DEVICE_FEATURE_DMA_LOGGING_START (same words)"),
    Rule("dma.report-any-range",
         "DMA_LOGGING_REPORT of a page-aligned IOVA range inside the logged ranges succeeds wherever it "
         "starts, not only at the start of a logged range or of a DMA region.",
         f"{VFIO_H}, DMA_LOGGING_REPORT ('read back and clear the device DMA log for a specific IOVA "
         "range')",
         messages_source=f"{_VU}, VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT ('returns the dirty bitmap for a "
         "specific IOVA range')"),
    Rule("dma.map-wrap-refused",
         "A DMA map of client memory (VFIO_USER_DMA_MAP; the IOMMU's VFIO_IOMMU_MAP_DMA in the kernel) "
         "whose address + size passes 2^64 fails: it is no range of DMA addresses.",
         f"{VFIO_H}, VFIO_IOMMU_MAP_DMA; reference: {_TYPE1_WRAP}",
         messages_source=f"{_VU}, VFIO_USER_DMA_MAP (address, size) and Security Considerations ('validate "
         f"input'); reference: {_TYPE1_WRAP}"),
    Rule("server.no-sanitizer-report",
         "While a test drives a user-space device server (a vfio-user server; the sim in-process) built "
         "with AddressSanitizer and UndefinedBehaviorSanitizer, the server prints no sanitizer report: an "
         "out-of-bounds access, a use after free or undefined behaviour is a server bug even when every "
         "reply was right (devices without a server log are not checked).",
         f"{_VU}, Security Considerations ('validate input and prevent against denial of service "
         "scenarios, buffer overflow'); ISO C undefined behaviour as the sanitizers detect it"),
]

RULES: dict[str, Rule] = {rule.id: rule for rule in _RULES}


def rule(rule_id: str) -> Rule:
    """The rule with this id (KeyError names the known ids)."""
    try:
        return RULES[rule_id]
    except KeyError:
        raise KeyError(f"unknown rule {rule_id!r} (known: {', '.join(sorted(RULES))})") from None


def transports_cell(r: Rule) -> str:
    """The transports a rule applies to, with the source on vfio-user, or why that transport lacks it."""
    parts = []
    if DATA_FD in r.transports:
        parts.append("data-fd")
    if MESSAGES in r.transports:
        parts.append(f"messages ({r.messages_source})" if r.messages_source != r.source else "messages")
    for transport, why in r.not_offered:
        parts.append(f"not {transport}: {why}")
    if MESSAGES not in r.transports and not r.not_offered:
        parts.append("not messages: about the kernel's data fd object")
    return "; ".join(parts)


def markdown() -> str:
    """The catalogue as a Markdown table (docs/rules.md)."""
    out = ["# Rule catalogue", "",
           "Generated by `python3 -m vfio_conform.model.spec --markdown > docs/rules.md` from "
           "`vfio_conform/model/spec.py`; do not edit by hand.", "",
           "Level `must`: a violation fails the test. Level `should`: a recommendation, recorded as "
           "\"should not met\" on a passing test, never a failure. Basis: `uapi` (stated by vfio.h), "
           "`reference` (the reference implementation's contract), `profile` (the device's profile). "
           "Transports: where the rule can be checked: `data-fd` (the kernel's data fd: kernel and sim "
           "backends), `messages` (vfio-user, with its source in the vfio-user specification); elsewhere its "
           "tests are not-supported, with the reason given here.",
           "", "| id | level | basis | transports | rule | source |", "|---|---|---|---|---|---|"]
    for r in _RULES:
        cells = (f"`{r.id}`", r.level, r.basis, transports_cell(r), r.text, r.source)
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    if argv != ["--markdown"]:
        print("usage: python3 -m vfio_conform.model.spec --markdown", file=sys.stderr)
        return 2
    sys.stdout.write(markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
