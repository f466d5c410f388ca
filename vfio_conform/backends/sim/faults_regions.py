"""Fault knobs for regions, the legacy v1 migration region and region-size mismatch.

`TABLE` (faults.Fault rows) is built on first access, as faults.py imports this module while loading;
`BASES` names the profile each knob is proven caught against (tests/test_region_faults_caught.py).
"""
from __future__ import annotations

import dataclasses
import os
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ...uapi.enums import RegionFlag

if TYPE_CHECKING:
    from .regions import Region


#: (name, rule id, summary, base profile, params) of every knob.
_ROWS: list[tuple[str, str, str, str, dict[str, Any]]] = []


def _f(name: str, rule_id: str, summary: str, base: str = "sim-p2p", **params: Any) -> None:
    _ROWS.append((name, rule_id, summary, base, params))


_f("region_offset_overlap", "region.info-consistent",
   "GET_REGION_INFO of every sized region but BAR0 reports BAR0's offset (0)")
_f("cap_chain_loop", "region.cap-chain-well-formed",
   "the last capability's next points back at itself")
_f("sparse_unaligned", "region.sparse-areas-valid",
   "the first sparse-mmap area is reported 0x800 bytes later (not page-aligned)")
_f("mmap_flag_missing", "region.matches-profile",
   "GET_REGION_INFO drops the MMAP flag of every region (mmap itself still works)")
_f("mmap_incoherent", "region.mmap-coherent",
   "mmap returns a private snapshot of the range, not the region itself")
_f("last_byte_fails", "region.last-byte-accessible",
   "an access ending at the last byte of a region fails with EINVAL")
_f("oob_read_overrun", "region.out-of-bounds-contained",
   "a read crossing the end of a region returns the whole count, 0xff past the end")
_f("oob_read_misplaced", "region.out-of-bounds-contained",
   "a read crossing the end returns the in-region count of bytes, taken from offset 0")
_f("oob_read_past_end", "region.out-of-bounds-contained",
   "a read starting at or past the end of a region returns zeros instead of failing or 0")
_f("oob_write_overcount", "region.out-of-bounds-contained",
   "a write crossing the end stores the bytes inside but returns the whole length")
_f("oob_write_wraps", "region.out-of-bounds-contained",
   "a write crossing the end stores the bytes past the end at the start of the region (address wrap)")
_f("mmap_past_end", "region.mmap-invalid-fails",
   "mmap of a range reaching past the end of the region succeeds")
_f("unaligned_fails", "region.access-widths",
   "2/4/8-byte accesses at an unaligned offset fail with EINVAL")
_f("qword_fails", "region.access-widths", "8-byte accesses fail with EINVAL")
_f("peer_layout_differs", "region.peer-layout-declared",
   "device `device` reports BAR2 twice its real size in GET_REGION_INFO", device="sim1")
_f("foreign_layout_accepted", "mismatch.resume-refused",
   "RESUMING accepts a stream of another layout and loads what fits (silent success)",
   base="sim-mismatch")
_f("v1_type_cap_missing", "protocol.matches-profile",
   "the v1 migration region has no TYPE capability", base="sim-v1-mmap")
_f("v1_reserved_nonzero", "v1.header-layout",
   "the reserved field of vfio_device_migration_info reads 0xdeadbeef", base="sim-v1-mmap")
_f("v1_any_width", "v1.native-width",
   "header fields accept accesses of any width and alignment", base="sim-v1-mmap")
_f("v1_accept_invalid_state", "v1.state-bits",
   "device_state 110 (SAVING|RESUMING) is accepted", base="sim-v1-mmap")
_f("v1_invalid_moves_state", "v1.state-bits",
   "a rejected device_state write leaves the device stopped (000)", base="sim-v1-mmap")
_f("v1_pending_stuck", "v1.save-loop",
   "in stop-and-copy pending_bytes stays 1 after the last chunk", base="sim-v1-mmap")
_f("v1_chunk_overflow", "v1.chunk-in-region",
   "data_size reports the chunk plus the region size", base="sim-v1-slow")
_f("v1_data_offset_outside", "v1.chunk-in-region",
   "data_offset reports the region size (outside the region)", base="sim-v1-slow")
_f("v1_resume_drops_chunk", "v1.resume-loop",
   "resuming ignores the second chunk written", base="sim-v1-slow")
_f("v1_mmap_stale", "v1.mmap-slow-identical",
   "an mmap of the data section is a snapshot taken at mmap time", base="sim-v1-mmap")
_f("v1_short_chunk_rejected", "v1.short-chunks-accepted",
   "a data_size write smaller than the data section fails unless it completes the stream",
   base="sim-v1-small")

#: knob name -> base profile of the test that proves it caught.
BASES: dict[str, str] = {name: base for name, _, _, base, _ in _ROWS}


def __getattr__(name: str) -> Any:
    """TABLE: the faults.Fault rows merged into faults.FAULTS (built lazily, see the docstring)."""
    if name != "TABLE":
        raise AttributeError(name)
    from .faults import Fault
    table = [Fault(n, rule, summary, MappingProxyType(params)) for n, rule, summary, _, params in _ROWS]
    globals()["TABLE"] = table
    return table


def info_fields(region: "Region", base: int) -> tuple[RegionFlag, int, int, bytes]:
    """GET_REGION_INFO's (flags, size, offset, caps) for `region`, bent by the region knobs."""
    spec, faults = region.spec, region.faults
    flags, size, offset = spec.flags, spec.size, region.offset
    if spec.index and size and faults.fire("region_offset_overlap"):
        offset = 0
    if flags & RegionFlag.MMAP and faults.fire("mmap_flag_missing"):
        flags &= ~RegionFlag.MMAP
    if (spec.index == 2 and size and "peer_layout_differs" in faults
            and region.label == faults.param("peer_layout_differs", "device")):
        faults.fire("peer_layout_differs")
        size *= 2
    if spec.type is not None and faults.fire("v1_type_cap_missing"):
        spec = dataclasses.replace(spec, type=None)
    caps = bytearray(spec.caps(base))
    if spec.sparse and faults.fire("sparse_unaligned"):
        caps[16:24] = (spec.sparse[0][0] + 0x800).to_bytes(8, "little")
    if caps and faults.fire("cap_chain_loop"):
        last, pos = 0, 0
        while True:                      # find the last header in the (well-formed) chain
            nxt = int.from_bytes(caps[pos + 4:pos + 8], "little")
            if not nxt:
                break
            last, pos = nxt - base, nxt - base
        caps[last + 4:last + 8] = (base + last).to_bytes(4, "little")
    return flags, size, offset, bytes(caps)


def bent_read(region: "Region", off: int, size: int) -> bytes | None:
    """What a read knob returns instead of the region's own answer (None: no knob applies)."""
    spec, faults = region.spec, region.faults
    if not spec.size or not spec.flags & RegionFlag.READ or size <= 0:
        return None
    if off >= spec.size:
        return bytes(size) if faults.fire("oob_read_past_end") else None
    inside = spec.size - off
    if inside >= size:
        return None
    if faults.fire("oob_read_overrun"):
        return os.pread(region.fd, inside, off) + b"\xff" * (size - inside)
    if faults.fire("oob_read_misplaced"):
        return os.pread(region.fd, inside, 0)
    return None


def bent_write(region: "Region", off: int, data: bytes, written: int) -> int:
    """The count a write returns after storing `written` bytes at `off`, bent by the write knobs."""
    spec, faults = region.spec, region.faults
    if off + len(data) <= spec.size or written != spec.size - off:
        return written
    if faults.fire("oob_write_wraps"):
        os.pwrite(region.fd, data[written:], 0)
    if faults.fire("oob_write_overcount"):
        return len(data)
    return written
