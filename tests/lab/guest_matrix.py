"""Guest-side check of the mtty variants: every (from, to) SET cell against a small oracle.

Runs inside a lab guest (stdlib only), on the first device of each module in the
manifest. Prints JSON {module: [mismatch, ...]}. The oracle is the 6.12 rule set:
unsupported target -> EINVAL; STOP_COPY -> PRE_COPY(_P2P) -> EINVAL; a new data_fd
only when entering RESUMING or entering the saving group from outside it; leaving
RESUMING with no resume data written must fail (EINVAL, state kept).
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import struct
import sys

from guest_probe import DEVICE_FEATURE, FEATURE_GET, FEATURE_SET, MIG_DEVICE_STATE, migration_flags, open_device

RESET = 0x3B6F
STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P = 1, 2, 3, 4, 5, 6, 7
SAVING = {STOP_COPY, PRE_COPY, PRE_COPY_P2P}
NEEDS = {RUNNING_P2P: 2, PRE_COPY: 4, PRE_COPY_P2P: 6}


def supported(state: int, flags: int) -> bool:
    return 1 <= state <= 7 and (flags & NEEDS.get(state, 0)) == NEEDS.get(state, 0)


def expect(src: int, dst: int, flags: int) -> tuple[int, bool, int]:
    """(errno or 0, data_fd expected, state after)."""
    if dst == src:
        return 0, False, src
    if not supported(dst, flags) or (src == STOP_COPY and dst in (PRE_COPY, PRE_COPY_P2P)) \
            or src == RESUMING:
        return errno.EINVAL, False, src
    return 0, dst == RESUMING or (dst in SAVING and src not in SAVING), dst


def set_state(dev: int, state: int) -> tuple[int, int]:
    buf = bytearray(struct.pack("IIIi", 16, FEATURE_SET | MIG_DEVICE_STATE, state, -1))
    try:
        fcntl.ioctl(dev, DEVICE_FEATURE, buf, True)
    except OSError as exc:
        return exc.errno, -1
    return 0, struct.unpack_from("i", buf, 12)[0]


def get_state(dev: int) -> int:
    buf = bytearray(struct.pack("IIIi", 16, FEATURE_GET | MIG_DEVICE_STATE, 0, -1))
    fcntl.ioctl(dev, DEVICE_FEATURE, buf, True)
    return struct.unpack_from("I", buf, 8)[0]


def check(dev: int) -> tuple[int, list[str]]:
    flags = migration_flags(dev)
    bad = []
    for src in range(1, 8):
        if not supported(src, flags):
            continue
        for dst in range(0, 9):
            fds = []
            err, fd = set_state(dev, src)
            fds.append(fd)
            if err or get_state(dev) != src:
                bad.append(f"cannot reach {src}: errno {err}")
                continue
            err, fd = set_state(dev, dst)
            fds.append(fd)
            got = (err, fd >= 0, get_state(dev))
            want = expect(src, dst, flags)
            if got != want:
                bad.append(f"{src}->{dst}: got {got} want {want}")
            fcntl.ioctl(dev, RESET)
            for f in fds:
                if f >= 0:
                    os.close(f)
            if get_state(dev) != RUNNING:
                bad.append(f"reset after {src}->{dst} left state {get_state(dev)}")
    return flags, bad


def main() -> int:
    manifest = json.load(open(os.environ["VFIO_LAB_MANIFEST"]))
    out, done = {}, set()
    for d in manifest["devices"]:
        if d["module"] in done:
            continue
        done.add(d["module"])
        container, group, dev = open_device(d["vfio_dev"], d["id"])
        try:
            flags, bad = check(dev)
            out[d["module"]] = {"flags": flags, "mismatches": bad}
        finally:
            for fd in (dev, group, container):
                os.close(fd)
    json.dump(out, sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
