"""What the region knobs (faults.py, areas regions/v1) do to GET_REGION_INFO and region access."""
from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Protocol

from ...uapi.enums import RegionFlag

if TYPE_CHECKING:
    from .faults import ActiveFaults
    from .regionspec import RegionSpec


class Region(Protocol):
    """What the knobs read of a sim region (regions.Region): its layout, knobs, memfd, label, offset."""

    spec: RegionSpec
    faults: ActiveFaults
    fd: int
    label: str

    @property
    def offset(self) -> int: ...


def info_fields(region: Region, base: int) -> tuple[RegionFlag, int, int, bytes]:
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


def bent_read(region: Region, off: int, size: int) -> bytes | None:
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


def bent_write(region: Region, off: int, data: bytes, written: int) -> int:
    """The count a write returns after storing `written` bytes at `off`, bent by the write knobs."""
    spec, faults = region.spec, region.faults
    if off + len(data) <= spec.size or written != spec.size - off:
        return written
    if faults.fire("oob_write_wraps"):
        os.pwrite(region.fd, data[written:], 0)
    if faults.fire("oob_write_overcount"):
        return len(data)
    return written
