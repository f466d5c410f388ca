"""The sim's migration stream: a fixed header (magic, version, layout fingerprint, length, sha256)
then the payload (internal register block, then each migrated region in index order).
"""
from __future__ import annotations

import dataclasses
import hashlib
import struct

MAGIC = 0x5643_5349_4D53_5452          # "VCSIMSTR"
VERSION = 1
#: magic u64, version u32, header length u32, fingerprint 16s, payload length u64, sha256 32s.
_HEADER = struct.Struct("<QII16sQ32s")
HEADER_LEN = _HEADER.size               # 72


class StreamError(ValueError):
    """The stream does not belong to this device layout, or is incomplete or corrupt."""


@dataclasses.dataclass(frozen=True)
class StreamLayout:
    """What a stream carries: `state_size` internal bytes, then (index, size) of each migrated region."""

    state_size: int
    regions: tuple[tuple[int, int], ...]

    @property
    def payload_len(self) -> int:
        return self.state_size + sum(size for _, size in self.regions)

    @property
    def stream_len(self) -> int:
        return HEADER_LEN + self.payload_len

    @property
    def fingerprint(self) -> bytes:
        desc = f"vfio-conform-sim;state={self.state_size};regions={list(self.regions)}"
        return hashlib.sha256(desc.encode()).digest()[:16]


@dataclasses.dataclass(frozen=True)
class Header:
    magic: int
    version: int
    header_len: int
    fingerprint: bytes
    payload_len: int
    sha256: bytes


def encode(layout: StreamLayout, payload: bytes) -> bytes:
    """Header + payload for `layout` (payload must be exactly layout.payload_len bytes)."""
    if len(payload) != layout.payload_len:
        raise ValueError(f"payload is {len(payload)} bytes, layout needs {layout.payload_len}")
    header = _HEADER.pack(MAGIC, VERSION, HEADER_LEN, layout.fingerprint, len(payload),
                          hashlib.sha256(payload).digest())
    return header + payload


def parse_header(data: bytes | bytearray) -> Header:
    if len(data) < HEADER_LEN:
        raise StreamError(f"header needs {HEADER_LEN} bytes, got {len(data)}")
    return Header(*_HEADER.unpack_from(bytes(data[:HEADER_LEN])))


def header_problem(layout: StreamLayout, data: bytes | bytearray) -> str | None:
    """Why the first HEADER_LEN bytes of `data` do not fit `layout` (None if they do)."""
    try:
        hdr = parse_header(data)
    except StreamError as exc:
        return str(exc)
    if hdr.magic != MAGIC:
        return f"bad magic {hdr.magic:#x}"
    if hdr.version != VERSION or hdr.header_len != HEADER_LEN:
        return f"unsupported version {hdr.version} / header length {hdr.header_len}"
    if hdr.fingerprint != layout.fingerprint:
        return f"layout fingerprint {hdr.fingerprint.hex()} is not this device's {layout.fingerprint.hex()}"
    if hdr.payload_len != layout.payload_len:
        return f"payload length {hdr.payload_len}, this device needs {layout.payload_len}"
    return None


def decode(layout: StreamLayout, data: bytes | bytearray) -> bytes:
    """The payload of a complete, valid stream for `layout` (StreamError says what is wrong)."""
    problem = header_problem(layout, data)
    if problem:
        raise StreamError(problem)
    if len(data) != layout.stream_len:
        raise StreamError(f"stream is {len(data)} bytes, expected {layout.stream_len}")
    payload = bytes(data[HEADER_LEN:])
    if hashlib.sha256(payload).digest() != parse_header(data).sha256:
        raise StreamError("payload checksum mismatch")
    return payload


def split(layout: StreamLayout, payload: bytes) -> tuple[bytes, dict[int, bytes]]:
    """(internal block, {region index: contents}) of a payload."""
    internal, pos, regions = payload[:layout.state_size], layout.state_size, {}
    for index, size in layout.regions:
        regions[index] = payload[pos:pos + size]
        pos += size
    return internal, regions


def join(layout: StreamLayout, internal: bytes, regions: dict[int, bytes]) -> bytes:
    """Inverse of split()."""
    return internal + b"".join(regions[index] for index, _ in layout.regions)
