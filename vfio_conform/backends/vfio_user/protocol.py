"""vfio-user wire format: the message header, command numbers and the version capabilities.

Facts from libvfio-user's include/vfio-user.h (protocol 0.1/0.2): every message starts with a
16-byte little-endian header {msg_id u16, cmd u16, msg_size u32 (header included), flags u32,
error_no u32}; a reply carries the command's msg_id and cmd, type REPLY in the flags' low nibble and,
with the ERROR flag, an errno.
"""
from __future__ import annotations

import enum
import json
import struct
from dataclasses import dataclass

HEADER = struct.Struct("<HHIII")
HEADER_SIZE = HEADER.size
TYPE_MASK = 0xF
TYPE_COMMAND = 0x0
TYPE_REPLY = 0x1
F_NO_REPLY = 0x10
F_ERROR = 0x20
VERSION_MAJOR = 0
VERSION_MINOR = 2
DEFAULT_MAX_DATA_XFER = 1 << 20
DEFAULT_MAX_MSG_FDS = 1
#: what this client accepts in one message (the server's replies carry at most this many fds)
CLIENT_MAX_MSG_FDS = 8


class Cmd(enum.IntEnum):
    VERSION = 1
    DMA_MAP = 2
    DMA_UNMAP = 3
    DEVICE_GET_INFO = 4
    DEVICE_GET_REGION_INFO = 5
    DEVICE_GET_REGION_IO_FDS = 6
    DEVICE_GET_IRQ_INFO = 7
    DEVICE_SET_IRQS = 8
    REGION_READ = 9
    REGION_WRITE = 10
    DMA_READ = 11
    DMA_WRITE = 12
    DEVICE_RESET = 13
    REGION_WRITE_MULTI = 15
    DEVICE_FEATURE = 16
    MIG_DATA_READ = 17
    MIG_DATA_WRITE = 18


def cmd_name(cmd: int) -> str:
    try:
        return f"VFIO_USER_{Cmd(cmd).name}"
    except ValueError:
        return f"vfio-user command {cmd}"


@dataclass(frozen=True)
class Header:
    msg_id: int
    cmd: int
    msg_size: int
    flags: int
    error_no: int

    @classmethod
    def unpack(cls, raw: bytes) -> "Header":
        return cls(*HEADER.unpack(raw[:HEADER_SIZE]))

    def pack(self) -> bytes:
        return HEADER.pack(self.msg_id, self.cmd, self.msg_size, self.flags, self.error_no)


@dataclass(frozen=True)
class Capabilities:
    """What the server announced in its VERSION reply."""
    major: int
    minor: int
    max_msg_fds: int = DEFAULT_MAX_MSG_FDS
    max_data_xfer_size: int = DEFAULT_MAX_DATA_XFER
    migration_pgsize: int | None = None
    raw: str = ""


def client_version_payload(max_data_xfer_size: int = DEFAULT_MAX_DATA_XFER, pgsize: int = 4096) -> bytes:
    caps = {"capabilities": {"max_msg_fds": CLIENT_MAX_MSG_FDS, "max_data_xfer_size": max_data_xfer_size,
                             "migration": {"pgsize": pgsize}}}
    return struct.pack("<HH", VERSION_MAJOR, VERSION_MINOR) + json.dumps(caps).encode() + b"\0"


def parse_version_reply(payload: bytes) -> Capabilities:
    """Raises ValueError with what is wrong."""
    if len(payload) < 4:
        raise ValueError(f"{len(payload)}-byte version payload (< 4)")
    major, minor = struct.unpack_from("<HH", payload)
    text = payload[4:].split(b"\0", 1)[0].decode("utf-8", "replace")
    if not text.strip():
        return Capabilities(major, minor)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"capabilities are not JSON ({exc.msg})") from None
    caps = doc.get("capabilities", {}) if isinstance(doc, dict) else None
    if not isinstance(caps, dict):
        raise ValueError("no 'capabilities' object")
    mig = caps.get("migration")
    pgsize = mig.get("pgsize") if isinstance(mig, dict) else None
    fds = caps.get("max_msg_fds", DEFAULT_MAX_MSG_FDS)
    xfer = caps.get("max_data_xfer_size", DEFAULT_MAX_DATA_XFER)
    for key, value in (("max_msg_fds", fds), ("max_data_xfer_size", xfer)):
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"{key} is {value!r}")
    if xfer == 0:
        raise ValueError("max_data_xfer_size is 0")
    return Capabilities(major, minor, fds, xfer, pgsize if isinstance(pgsize, int) else None, text)
