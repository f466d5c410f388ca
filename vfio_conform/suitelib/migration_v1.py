"""Driver for the legacy v1 migration region (vfio-uapi.md section 6), over the one Device interface.

Saves stream chunks to a sink (never the whole state in memory) and resumes them, splitting a chunk
into region-sized writes when the destination's data section is smaller (QEMU's v1 behaviour).
Driver bugs found on the way fail with the rule they break (SpecViolation).
"""
from __future__ import annotations

import dataclasses
import errno
import hashlib
from typing import BinaryIO

from .checks import expect
from ..device import Device, RegionInfo
from ..base.errors import errno_name
from ..uapi.enums import REGION_SUBTYPE_MIGRATION_DEPRECATED, V1_STATE_MASK, RegionType, V1State

#: vfio_device_migration_info: field -> (offset, native width).
FIELDS = {"device_state": (0, 4), "reserved": (4, 4), "pending_bytes": (8, 8),
          "data_offset": (16, 8), "data_size": (24, 8)}
HEADER_LEN = 32
MIGRATION_TYPE = (int(RegionType.MIGRATION_DEPRECATED), REGION_SUBTYPE_MIGRATION_DEPRECATED)
LEGAL_STATES = (0b000, 0b001, 0b010, 0b011, 0b100)
RUNNING, SAVING, RESUMING = int(V1State.RUNNING), int(V1State.SAVING), int(V1State.RESUMING)
#: Bound on save-loop iterations (a driver whose pending_bytes never reaches 0 is a bug, not a hang).
MAX_ITERATIONS = 100_000


def find_region(device: Device) -> RegionInfo | None:
    """The region carrying the TYPE cap (3 migration-deprecated, 1), if any."""
    for index in range(device.info().num_regions):
        code, info = device.try_region_info(index)
        if not code and info.type == MIGRATION_TYPE:
            return info
    return None


def valid(state: int) -> bool:
    """The v1 header's rule: RESUMING must be the only bit set if it is set."""
    state &= V1_STATE_MASK
    return not (state & RESUMING and state != RESUMING)


@dataclasses.dataclass
class SaveResult:
    """A saved stream: length, sha256 and each chunk's size (the resume must keep them)."""

    length: int = 0
    sha256: str = ""
    chunks: list[int] = dataclasses.field(default_factory=list)
    path: str = "slow"          # "mmap" or "slow": how the data section was read


class V1Migration:
    """One device's v1 migration region. `use_mmap`: read/write the data section via its sparse areas."""

    def __init__(self, device: Device, info: RegionInfo | None = None, use_mmap: bool = True):
        self.device = device
        self.info = info or find_region(device)
        if self.info is None:
            raise LookupError(f"{device.name} has no v1 migration region (TYPE cap 3/1)")
        self.use_mmap = use_mmap and self.info.mmappable and bool(self.info.sparse_areas)
        self._maps: dict[tuple[int, int], object] = {}

    # -- header fields ----------------------------------------------------------------------
    def try_read(self, name: str) -> tuple[int, int]:
        off, width = FIELDS[name]
        code, data = self.device.try_region_read(self.info.index, off, width, self.info)
        if not code and len(data) != width:
            code = errno.EIO
        return code, int.from_bytes(data, "little") if not code else 0

    def read(self, name: str) -> int:
        code, value = self.try_read(name)
        expect(code == 0, "v1.header-layout", f"reading {name} failed with {errno_name(code)}",
               self.device)
        return value

    def try_write(self, name: str, value: int) -> int:
        off, width = FIELDS[name]
        code, n = self.device.try_region_write(self.info.index, off, value.to_bytes(width, "little"),
                                               self.info)
        return code or (errno.EIO if n != width else 0)

    def state(self) -> int:
        return self.read("device_state") & V1_STATE_MASK

    def try_set_raw(self, value: int) -> int:
        """Write device_state = value, keeping the reserved bits as read (no local validity check)."""
        code, cur = self.try_read("device_state")
        if code:
            return code
        return self.try_write("device_state", (cur & ~V1_STATE_MASK) | (value & V1_STATE_MASK))

    def set_state(self, mask: int, value: int, rule: str = "v1.state-bits") -> None:
        """QEMU's read-modify-write: new = (cur & mask) | value, rejected locally if invalid."""
        code, cur = self.try_read("device_state")
        expect(code == 0, rule, f"reading device_state failed with {errno_name(code)}", self.device)
        new = (cur & mask) | value
        if not valid(new):
            raise ValueError(f"v1 device_state {new & V1_STATE_MASK:03b} is invalid")
        code = self.try_write("device_state", new)
        expect(code == 0, rule, f"device_state {cur & V1_STATE_MASK:03b} -> {new & V1_STATE_MASK:03b} "
                                f"failed with {errno_name(code)}", self.device)

    # -- data section -----------------------------------------------------------------------
    def _area(self, offset: int) -> tuple[int, int] | None:
        for a_off, a_size in (self.info.sparse_areas or ()) if self.use_mmap else ():
            if a_off <= offset < a_off + a_size:
                return a_off, a_size
        return None

    def _read_data(self, offset: int, size: int) -> bytes:
        """Read a chunk: from the mapping of its sparse area where it lies inside one, else pread."""
        out = bytearray()
        while len(out) < size:
            pos = offset + len(out)
            area = self._area(pos)
            if area is not None:
                n = min(size - len(out), area[0] + area[1] - pos)
                m = self._mapping(area)
                out += m[pos - area[0]:pos - area[0] + n]
            else:
                n = min(size - len(out), 1 << 20)
                code, data = self.device.try_region_read(self.info.index, pos, n, self.info)
                expect(code == 0 and len(data) == n, "v1.save-loop",
                       f"pread of {n} chunk bytes at {pos:#x}: {errno_name(code)}, {len(data)} bytes",
                       self.device)
                out += data
        return bytes(out)

    def _mapping(self, area: tuple[int, int]):
        """The area mapped once per save (as QEMU does at setup); unmapped by _unmap()."""
        if area not in self._maps:
            self._maps[area] = self.device.region_mmap(self.info.index, area[0], area[1], info=self.info)
        return self._maps[area]

    def _unmap(self) -> None:
        for m in self._maps.values():
            m.close()
        self._maps.clear()

    def _write_data(self, offset: int, data: bytes) -> int:
        area = self._area(offset)
        if area is not None and offset + len(data) <= area[0] + area[1]:
            with self.device.region_mmap(self.info.index, area[0], area[1], writable=True,
                                         info=self.info) as m:
                m[offset - area[0]:offset - area[0] + len(data)] = data
            return 0
        code, n = self.device.try_region_write(self.info.index, offset, data, self.info)
        return code or (errno.EIO if n != len(data) else 0)

    # -- save -------------------------------------------------------------------------------
    def _chunk(self) -> tuple[int, int]:
        """Stage one chunk: (data_offset, data_size), checked to lie inside the region."""
        offset, size = self.read("data_offset"), self.read("data_size")
        region = self.info.size
        expect(HEADER_LEN <= offset < region, "v1.chunk-in-region",
               f"data_offset {offset:#x} is outside the data section (region is {region:#x} bytes)",
               self.device)
        expect(offset + size <= region, "v1.chunk-in-region",
               f"data_offset {offset:#x} + data_size {size:#x} runs past the region end {region:#x}",
               self.device)
        return offset, size

    def _drain(self, sink: BinaryIO, result: SaveResult, digest, stop_copy: bool) -> None:
        for _ in range(MAX_ITERATIONS):
            if self.read("pending_bytes") == 0:
                return
            offset, size = self._chunk()
            if size == 0:
                expect(not stop_copy, "v1.save-loop",
                       "in stop-and-copy pending_bytes > 0 but the staged chunk is empty", self.device)
                return
            data = self._read_data(offset, size)
            sink.write(data)
            digest.update(data)
            result.length += size
            result.chunks.append(size)
        expect(False, "v1.save-loop", f"pending_bytes still > 0 after {MAX_ITERATIONS} chunks",
               self.device)

    def save(self, sink: BinaryIO, precopy: bool = True) -> SaveResult:
        """Pre-copy (RUNNING|SAVING) then stop-and-copy (SAVING) to the end; leaves the device stopped."""
        result, digest = SaveResult(path="mmap" if self.use_mmap else "slow"), hashlib.sha256()
        try:
            if precopy:
                self.set_state(0xFFFFFFFF, SAVING, "v1.save-loop")      # 001 -> 011
                self._drain(sink, result, digest, stop_copy=False)
            self.set_state(~RUNNING, SAVING, "v1.save-loop")              # -> 010
            self._drain(sink, result, digest, stop_copy=True)
        finally:
            self._unmap()
        self.set_state(~SAVING, 0, "v1.save-loop")
        result.sha256 = digest.hexdigest()
        return result

    # -- resume -----------------------------------------------------------------------------
    def resume(self, source: BinaryIO, chunks: list[int], rule: str = "v1.resume-loop") -> int:
        """Load a saved stream chunk by chunk; a chunk that does not fit is split (QEMU v1).

        Returns the errno of leaving RESUMING (0 = loaded); write failures fail `rule`.
        """
        self.set_state(~V1_STATE_MASK, RESUMING, rule)
        for number, size in enumerate(chunks):
            left = size
            while left:
                offset = self.read("data_offset")
                expect(HEADER_LEN <= offset < self.info.size, "v1.chunk-in-region",
                       f"destination data_offset {offset:#x} outside its {self.info.size:#x}-byte region",
                       self.device)
                n = min(left, self.info.size - offset)
                data = source.read(n)
                expect(len(data) == n, rule, f"saved stream ends early in chunk {number}", self.device)
                code = self._write_data(offset, data)
                expect(code == 0, rule, f"writing {n} bytes of chunk {number} at {offset:#x}: "
                                        f"{errno_name(code)}", self.device)
                code = self.try_write("data_size", n)
                expect(code == 0, rule, f"data_size = {n} (chunk {number}, {size - left} bytes in) "
                                        f"failed with {errno_name(code)}", self.device)
                left -= n
        code, cur = self.try_read("device_state")
        return code or self.try_write("device_state", (cur & ~V1_STATE_MASK) | RUNNING)
