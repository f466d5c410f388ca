"""The legacy v1 migration region of the sim: vfio_device_migration_info trapped at offset 0,
a memfd data section (mmappable through a sparse area, or trapped only), save and resume loops.

The stream it produces is the sim's v2 stream (stream.py) cut into chunks.
"""
from __future__ import annotations

import dataclasses
import errno
import mmap
import os
import struct
from typing import TYPE_CHECKING, Any, Mapping, Protocol

from ...uapi.enums import V1_STATE_MASK, RegionFlag, RegionType, V1State
from ...uapi.enums import REGION_SUBTYPE_MIGRATION_DEPRECATED as SUBTYPE
from . import stream
from .regions import PAGE, Region, RegionSpec, oserror

if TYPE_CHECKING:
    from .stream import StreamLayout


class V1Device(Protocol):
    """What the v1 migration region uses of its sim device (a SimDevice): the stream layout, the
    regions the stream carries, the device's internal state and its stop-copy stream."""

    layout: StreamLayout
    regions: list[Region]
    internal: bytes

    def stop_copy_stream(self) -> bytes: ...

#: vfio_device_migration_info field -> (offset, width); reserved reads 0, writes are ignored.
FIELDS = {"device_state": (0, 4), "reserved": (4, 4), "pending_bytes": (8, 8),
          "data_offset": (16, 8), "data_size": (24, 8)}
HEADER_LEN = 32
VALID_STATES = frozenset({0b000, 0b001, 0b010, 0b011, 0b100})


@dataclasses.dataclass(frozen=True)
class V1Config:
    """Args: index (region index), region_size, data_offset (start of the data section),
    chunk (max bytes staged per iteration; 0 = the whole section), mmap (sparse area over the
    data section), precopy_bytes (stream bytes offered while RUNNING|SAVING)."""

    index: int = 9
    region_size: int = 64 << 10
    data_offset: int = 4096
    chunk: int = 0
    mmap: bool = True
    precopy_bytes: int = 2048

    @property
    def section(self) -> int:
        return self.region_size - self.data_offset

    @property
    def chunk_size(self) -> int:
        return min(self.chunk or self.section, self.section)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "V1Config":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown sim v1 key(s) {unknown} (known: {', '.join(sorted(known))})")
        cfg = cls(**data)
        for key in ("index", "region_size", "data_offset", "chunk", "precopy_bytes"):
            value = getattr(cfg, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"sim v1 {key}: expected a non-negative integer, got {value!r}")
        if cfg.index < 9 or not HEADER_LEN <= cfg.data_offset < cfg.region_size:
            raise ValueError(f"sim v1: index >= 9 and {HEADER_LEN} <= data_offset < region_size needed")
        if cfg.mmap and (cfg.data_offset % PAGE or cfg.region_size % PAGE):
            raise ValueError("sim v1: an mmappable data section needs page-aligned data_offset/region_size")
        return cfg

    def spec(self) -> RegionSpec:
        flags = RegionFlag.READ | RegionFlag.WRITE | (RegionFlag.MMAP if self.mmap else 0)
        sparse = ((self.data_offset, self.section),) if self.mmap else None
        return RegionSpec(self.index, self.region_size, RegionFlag(flags), sparse,
                          (int(RegionType.MIGRATION_DEPRECATED), SUBTYPE), migrate=False)


class V1Region(Region):
    """The migration region: trapped header fields, a memfd data section, the v1 state machine."""

    def __init__(self, spec: RegionSpec, label: str, rng, device: V1Device, cfg: V1Config):
        super().__init__(spec, label, rng)
        os.pwrite(self.fd, bytes(spec.size), 0)
        self.device, self.cfg = device, cfg
        self.state = int(V1State.RUNNING)
        self._reset_sessions()

    def _reset_sessions(self) -> None:
        self.save: bytes | None = None        # the stream being saved
        self.pos = 0                          # next stream byte to stage
        self.staged: int | None = None        # bytes staged by the last data_offset read
        self.received: bytearray | None = None
        self.chunks_written = 0

    def reset(self) -> None:
        self.state = int(V1State.RUNNING)
        self._reset_sessions()

    # -- access routing --------------------------------------------------------------------
    def read(self, off: int, size: int) -> bytes:
        if off < self.cfg.data_offset:
            name = self._name(off, size)
            f_off, width = FIELDS[name]
            whole = self._field(name).to_bytes(width, "little")
            return whole[off - f_off:off - f_off + size].ljust(size, b"\0")
        return super().read(off, size)

    def write(self, off: int, data: bytes) -> int:
        if off < self.cfg.data_offset:
            self._set_field(off, len(data), int.from_bytes(data, "little"))
            return len(data)
        return super().write(off, data)

    def mmap(self, off: int, length: int, writable: bool) -> mmap.mmap:
        if self.faults.fire("v1_mmap_stale"):
            copy = mmap.mmap(-1, length, prot=mmap.PROT_READ | mmap.PROT_WRITE)
            copy.write(os.pread(self.fd, length, off))
            super().mmap(off, length, writable).close()   # same checks as a real mapping
            return copy
        return super().mmap(off, length, writable)

    def _name(self, off: int, size: int) -> str:
        """The header field at exactly (off, size), or EINVAL (native width and alignment)."""
        for name, (f_off, width) in FIELDS.items():
            if off == f_off and size == width:
                return name
            if self.faults.fire("v1_any_width") and f_off <= off < f_off + width:
                return name
        raise oserror(errno.EINVAL, f"v1 header access [{off:#x}, +{size}) is not a whole field")

    # -- the header fields -------------------------------------------------------------------
    def _field(self, name: str) -> int:
        faults = self.faults
        if name == "device_state":
            return self.state
        if name == "reserved":
            return 0xDEADBEEF if faults.fire("v1_reserved_nonzero") else 0
        if name == "pending_bytes":
            self.staged = None                       # the last chunk counts as consumed
            left = self._limit() - self.pos if self.save is not None else 0
            if self.save is not None and not left and not self.state & V1State.RUNNING \
                    and faults.fire("v1_pending_stuck"):
                return 1
            return max(0, left)
        if name == "data_offset":
            if self.save is not None and self.staged is None:
                self._stage()
            if faults.fire("v1_data_offset_outside"):
                return self.cfg.region_size
            return self.cfg.data_offset
        size_now = self.staged or 0
        if self.save is not None and faults.fire("v1_chunk_overflow"):
            return size_now + self.cfg.region_size
        return size_now

    def _limit(self) -> int:
        assert self.save is not None
        if self.state & V1State.RUNNING:
            return min(len(self.save), self.cfg.precopy_bytes)
        return len(self.save)

    def _stage(self) -> None:
        chunk = self.save[self.pos:min(self.pos + self.cfg.chunk_size, self._limit())]
        os.pwrite(self.fd, chunk, self.cfg.data_offset)
        self.pos += len(chunk)
        self.staged = len(chunk)

    def _set_field(self, off: int, size: int, value: int) -> None:
        name = self._name(off, size)
        if name == "device_state":
            self._set_state(value & V1_STATE_MASK)
        elif name == "data_size":
            self._consume(value)
        elif name in ("pending_bytes", "data_offset"):
            raise oserror(errno.EINVAL, f"v1 {name} is read-only")

    def _set_state(self, new: int) -> None:
        old = self.state
        if new not in VALID_STATES and not (new == 0b110 and self.faults.fire("v1_accept_invalid_state")):
            if self.faults.fire("v1_invalid_moves_state"):
                self.state = 0
            raise oserror(errno.EINVAL, f"v1 device_state {new:03b} is invalid")
        if old & V1State.RESUMING and not new & V1State.RESUMING:
            self._commit()
        if new & V1State.SAVING and not old & V1State.SAVING:
            self.save, self.pos, self.staged = self.device.stop_copy_stream(), 0, None
        if not new & V1State.SAVING:
            self.save, self.staged = None, None
        if new & V1State.RESUMING and not old & V1State.RESUMING:
            self.received, self.chunks_written = bytearray(), 0
        self.state = new

    def _consume(self, size: int) -> None:
        """Resume: the user wrote `size` bytes at data_offset; load them before returning."""
        if self.received is None:
            raise oserror(errno.EINVAL, "v1 data_size written outside RESUMING")
        if size > self.cfg.section:
            raise oserror(errno.EINVAL, f"v1 data_size {size} > data section {self.cfg.section}")
        expected = self.device.layout.stream_len
        completes = len(self.received) + size >= expected
        if size < self.cfg.section and not completes and self.faults.fire("v1_short_chunk_rejected"):
            raise oserror(errno.EINVAL, f"v1 short chunk of {size} bytes")
        self.chunks_written += 1
        if self.chunks_written == 2 and self.faults.fire("v1_resume_drops_chunk"):
            return
        if len(self.received) + size > expected:
            raise oserror(errno.ENOMEM, f"v1 resume: {len(self.received) + size} bytes exceed {expected}")
        self.received += os.pread(self.fd, size, self.cfg.data_offset)

    def _commit(self) -> None:
        """Leaving RESUMING: the received stream must be whole and valid (else EINVAL, state kept)."""
        try:
            payload = stream.decode(self.device.layout, bytes(self.received or b""))
        except stream.StreamError as exc:
            raise oserror(errno.EINVAL, f"v1 resume: {exc}") from None
        internal, contents = stream.split(self.device.layout, payload)
        self.device.internal = internal
        for region in self.device.regions:
            if region.spec.index in contents:
                region.load(contents[region.spec.index])
        self.received = None


def header(data: bytes) -> dict[str, int]:
    """Decode a 32-byte vfio_device_migration_info (for tests and messages)."""
    state, reserved, pending, offset, size = struct.unpack("<IIQQQ", data[:HEADER_LEN])
    return {"device_state": state, "reserved": reserved, "pending_bytes": pending,
            "data_offset": offset, "data_size": size}
