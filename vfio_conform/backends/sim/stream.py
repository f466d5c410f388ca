"""The sim's migration stream: a fixed header (magic, version, layout fingerprint, length, sha256)
then the payload (internal register block, then each migrated region in index order).

Version 2 (pre-copy sessions): the digest field carries the pre-copy split `p` (u64); the header is
followed by payload[:p], then records (payload offset u64, length u32, data) that re-send dirtied or
remaining bytes, and an end record (offset END_OFFSET, 32 bytes: sha256 of the final payload).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import struct

MAGIC = 0x5643_5349_4D53_5452          # "VCSIMSTR"
VERSION = 1
VERSION_PRECOPY = 2
#: A v2 stream may be at most this many times as long as the v1 stream (beyond it: ENOMEM).
MAX_GROWTH = 8
END_OFFSET = (1 << 64) - 1
_RECORD = struct.Struct("<QI")
RECORD_LEN = _RECORD.size               # 12
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

    @functools.cached_property
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
    if hdr.version not in (VERSION, VERSION_PRECOPY) or hdr.header_len != HEADER_LEN:
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
    if parse_header(data).version == VERSION_PRECOPY:
        return _decode_precopy(layout, data)
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


# -- version 2: pre-copy streams with dirty records ---------------------------------------------
def precopy_header(layout: StreamLayout, split: int) -> bytes:
    """The v2 header: the digest field holds the pre-copy split (the digest moves to the end record)."""
    return _HEADER.pack(MAGIC, VERSION_PRECOPY, HEADER_LEN, layout.fingerprint, layout.payload_len,
                        split.to_bytes(8, "little") + bytes(24))


def record(offset: int, data: bytes | bytearray) -> bytes:
    """One v2 record re-sending payload[offset:offset+len(data)]."""
    return _RECORD.pack(offset, len(data)) + bytes(data)


def end_record(payload: bytes | bytearray) -> bytes:
    """The v2 end record: sha256 of the final payload."""
    return record(END_OFFSET, hashlib.sha256(payload).digest())


def max_len(layout: StreamLayout, head: bytes | bytearray) -> int:
    """Longest stream a resuming session accepts, judged from the first bytes written."""
    if len(head) >= HEADER_LEN and parse_header(head).version == VERSION_PRECOPY:
        return MAX_GROWTH * layout.stream_len
    return layout.stream_len


def _decode_precopy(layout: StreamLayout, data: bytes | bytearray) -> bytes:
    """Rebuild the payload of a v2 stream: prefix, records in order, end record with the digest."""
    size = layout.payload_len
    split = int.from_bytes(parse_header(data).sha256[:8], "little")
    if split > size or len(data) < HEADER_LEN + split:
        raise StreamError(f"pre-copy split {split} does not fit the {len(data)}-byte stream")
    buf, covered = bytearray(size), bytearray(size)
    buf[:split] = data[HEADER_LEN:HEADER_LEN + split]
    covered[:split] = b"\1" * split
    pos = HEADER_LEN + split
    while pos + RECORD_LEN <= len(data):
        offset, length = _RECORD.unpack_from(bytes(data[pos:pos + RECORD_LEN]))
        body = bytes(data[pos + RECORD_LEN:pos + RECORD_LEN + length])
        if len(body) != length:
            raise StreamError(f"record at {pos} is cut short")
        pos += RECORD_LEN + length
        if offset == END_OFFSET:
            if pos != len(data):
                raise StreamError(f"{len(data) - pos} bytes after the end record")
            if covered.count(0):
                raise StreamError(f"{covered.count(0)} payload bytes were never sent")
            if hashlib.sha256(buf).digest() != body:
                raise StreamError("payload checksum mismatch")
            return bytes(buf)
        if offset + length > size:
            raise StreamError(f"record [{offset}, +{length}) leaves the {size}-byte payload")
        buf[offset:offset + length] = body
        covered[offset:offset + length] = b"\1" * length
    raise StreamError("the stream has no end record")
