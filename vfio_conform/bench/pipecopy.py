"""The harness's own copy path on real file descriptors, against a C copy loop on the same ones.

A C producer writes `total` bytes into pipe A, a copier moves them from A to pipe B, a C consumer
reads B to its end and checks the count. The copier is either the harness (`DataFd.copy_to` of a
raw-fd transport, the kernel backend's path: readv into one reused buffer, xxh3_128, write of the same
view; or the splice(2) path that does not look at the bytes) or a C read/write loop. No device is
involved, so the figure is the harness's alone; both run in the same bench run, one after the other,
several times, and the best of each is compared (a shared host's noise only slows a run down).
"""
from __future__ import annotations

import fcntl
import os
import subprocess
import time

from .cloop import CLoops

#: C producer / consumer / copy loop, one program: `prog produce FD TOTAL CHUNK`, `prog consume FD
#: TOTAL CHUNK` (exit 2 when the count differs), `prog copy IN OUT CHUNK`.
PIPE_ENDS_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
    const char *mode = argv[1];
    if (!strcmp(mode, "copy")) {
        int in = atoi(argv[2]), out = atoi(argv[3]); size_t chunk = (size_t)atol(argv[4]);
        char *buf = malloc(chunk); ssize_t r;
        while ((r = read(in, buf, chunk)) > 0)
            for (ssize_t done = 0; done < r;) {
                ssize_t w = write(out, buf + done, (size_t)(r - done));
                if (w <= 0) return 1;
                done += w;
            }
        return r < 0;
    }
    int fd = atoi(argv[2]); long long total = atoll(argv[3]); size_t chunk = (size_t)atol(argv[4]);
    char *buf = malloc(chunk);
    for (size_t i = 0; i < chunk; i++) buf[i] = (char)(i * 7);
    if (!strcmp(mode, "produce")) {
        for (long long left = total; left > 0;) {
            ssize_t w = write(fd, buf, left < (long long)chunk ? (size_t)left : chunk);
            if (w <= 0) return 1;
            left -= w;
        }
        return 0;
    }
    long long got = 0; ssize_t r;
    while ((r = read(fd, buf, chunk)) > 0) got += r;
    return got == total ? 0 : 2;
}
"""

CHUNK = 1 << 20
#: Both pipes hold 1 MiB (a data fd of a real driver hands out its records whole; a 64 KiB pipe
#: would cut every copier's work into 16 times as many syscalls, the C loop's as much as the harness's).
PIPE_SIZE = 1 << 20
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


class _PipeTransport:
    """The kernel backend's data-fd contract on plain pipes: read/write are syscalls on the fd."""

    raw_data_fds = True

    def read(self, fd: int, size: int, timeout=None) -> bytes:
        return os.read(fd, size)

    def write(self, fd: int, data, timeout=None) -> int:
        return os.write(fd, data)

    def close(self, fd: int) -> None:
        os.close(fd)


class _PipeDevice:
    """Just enough of a Device for DataFd: a name, an I/O timeout, a transport, fd tracking."""

    name = "pipe"
    io_timeout = 30.0

    def __init__(self):
        self.transport = _PipeTransport()

    def _track(self, fd) -> None:
        pass

    def _forget(self, fd) -> None:
        pass


def _pipe() -> tuple[int, int]:
    """A pipe of PIPE_SIZE bytes (F_SETPIPE_SZ; the default 64 KiB when the host refuses)."""
    rd, wr = os.pipe()
    try:
        fcntl.fcntl(wr, F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass
    return rd, wr


def _run(exe: str, total: int, copier) -> float:
    """Seconds from starting the producer to the consumer's exit, with `copier(in_fd, out_fd)`."""
    a_rd, a_wr = _pipe()
    b_rd, b_wr = _pipe()
    start = time.perf_counter()
    prod = subprocess.Popen([exe, "produce", str(a_wr), str(total), str(CHUNK)], pass_fds=(a_wr,))
    cons = subprocess.Popen([exe, "consume", str(b_rd), str(total), str(CHUNK)], pass_fds=(b_rd,))
    os.close(a_wr)
    os.close(b_rd)
    try:
        copier(a_rd, b_wr)
    finally:
        os.close(a_rd)
        os.close(b_wr)
        prod.wait(timeout=600)
        code = cons.wait(timeout=600)
    seconds = time.perf_counter() - start
    if prod.returncode or code:
        raise RuntimeError(f"pipe bench: producer exit {prod.returncode}, consumer exit {code}")
    return seconds


def measure(total: int = 1 << 30, repeats: int = 5, cloops: CLoops | None = None) -> dict:
    """MiB/s of the C copy loop, the harness's hashed copy and its splice path (best of `repeats`)."""
    from ..device.datafd import DataFd
    from ..device.digest import ALGORITHM
    from ..device.fdcopy import copy_spliced
    cloops = cloops or CLoops()
    exe = cloops.build("pipe_ends", PIPE_ENDS_C)
    if exe is None:
        return {"bytes": total, "c_mib_s": None, "note": cloops.errors.get("pipe_ends", "")}
    dev = _PipeDevice()
    digests = []

    def harness(src: int, dst: int) -> None:
        out_fd, in_fd = DataFd(dev, os.dup(src)), DataFd(dev, os.dup(dst))
        try:
            digests.append(out_fd.copy_to(in_fd, CHUNK))
        finally:
            out_fd.close()
            in_fd.close()

    def c_loop(src: int, dst: int) -> None:
        proc = subprocess.run([str(exe), "copy", str(src), str(dst), str(CHUNK)], pass_fds=(src, dst),
                              timeout=600)
        if proc.returncode:
            raise RuntimeError(f"C copy loop exit {proc.returncode}")

    def spliced(src: int, dst: int) -> None:
        copy_spliced(src, dst, timeout=30.0)

    best = {"c": float("inf"), "harness": float("inf"), "splice": float("inf")}
    for _ in range(repeats):
        for name, copier in (("c", c_loop), ("harness", harness), ("splice", spliced)):
            best[name] = min(best[name], _run(str(exe), total, copier))
    mib = total / (1 << 20)
    rate = {k: round(mib / v, 1) for k, v in best.items()}
    moved_ok = all(d.length == total for d in digests)
    return {"bytes": total, "repeats": repeats, "digest": ALGORITHM, "c_mib_s": rate["c"],
            "harness_mib_s": rate["harness"], "splice_mib_s": rate["splice"],
            "ratio": round(rate["harness"] / rate["c"], 3), "splice_ratio": round(rate["splice"] / rate["c"], 3),
            "complete": moved_ok}


def render(res: dict) -> str:
    if res.get("c_mib_s") is None:
        return f"pipe copy: C loop n/a ({res.get('note', '')})"
    return (f"pipe copy (C producer -> harness -> C consumer, {res['bytes'] / (1 << 20):.0f} MiB, best of "
            f"{res['repeats']}): harness DataFd.copy_to ({res['digest']}) {res['harness_mib_s']:.0f} MiB/s, "
            f"splice {res['splice_mib_s']:.0f} MiB/s, C copy loop {res['c_mib_s']:.0f} MiB/s -> "
            f"{res['ratio']:.2f}x (splice {res['splice_ratio']:.2f}x; target >= 0.8)")


if __name__ == "__main__":
    import json
    import sys
    print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 1 << 30)))
