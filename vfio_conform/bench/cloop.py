"""Raw C baselines built at bench time with the system compiler (gcc): the floor for each ratio."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

#: SET MIG_DEVICE_STATE in a loop on an inherited device fd: argv fd, rounds, state...; prints ns per SET.
SET_LOOP_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>
#include <sys/ioctl.h>
struct req { uint32_t argsz, flags, device_state; int32_t data_fd; };
int main(int argc, char **argv) {
    int fd = atoi(argv[1]); long rounds = atol(argv[2]); unsigned long request = strtoul(argv[3], 0, 0);
    uint32_t flags = (uint32_t)strtoul(argv[4], 0, 0); int n = argc - 5;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long r = 0; r < rounds; r++)
        for (int i = 0; i < n; i++) {
            struct req q = {16, flags, (uint32_t)atoi(argv[5 + i]), -2};
            if (ioctl(fd, request, &q) < 0) { perror("ioctl"); return 1; }
        }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
    printf("%.1f\n", ns / (rounds * n));
    return 0;
}
"""

#: Copy `bytes` through a pipe: the child writes chunks, the parent reads them; prints MiB/s.
PIPE_LOOP_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
int main(int argc, char **argv) {
    long long total = atoll(argv[1]); size_t chunk = (size_t)atol(argv[2]);
    char *buf = malloc(chunk); int p[2];
    for (size_t i = 0; i < chunk; i++) buf[i] = (char)i;
    if (pipe(p)) return 1;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        for (long long left = total; left > 0;) {
            ssize_t w = write(p[1], buf, left < (long long)chunk ? (size_t)left : chunk);
            if (w <= 0) _exit(1);
            left -= w;
        }
        _exit(0);
    }
    close(p[1]);
    long long got = 0; ssize_t r;
    while ((r = read(p[0], buf, chunk)) > 0) got += r;
    waitpid(pid, 0, 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
    if (got != total) return 2;
    printf("%.1f\n", total / s / 1048576.0);
    return 0;
}
"""


class CLoops:
    """The C baselines compiled once into a private temporary directory (None if there is no gcc)."""

    def __init__(self):
        self._dir = tempfile.TemporaryDirectory(prefix="vc-bench-")
        self.compiler = shutil.which("gcc") or shutil.which("cc")
        self.errors: dict[str, str] = {}

    def build(self, name: str, source: str) -> Path | None:
        if self.compiler is None:
            self.errors[name] = "no C compiler (gcc) on PATH"
            return None
        exe = Path(self._dir.name) / name
        if exe.exists():
            return exe
        src = exe.with_suffix(".c")
        src.write_text(source)
        proc = subprocess.run([self.compiler, "-O2", "-o", str(exe), str(src)], capture_output=True,
                              text=True, timeout=120)
        if proc.returncode:
            self.errors[name] = f"{self.compiler} failed: {proc.stderr.strip()[-300:]}"
            return None
        return exe

    def set_loop_ns(self, fd: int, request: int, flags: int, cycle: list[int], rounds: int) -> float | None:
        """ns per SET MIG_DEVICE_STATE of the C loop on `fd` (inherited), or None (see errors)."""
        exe = self.build("set_loop", SET_LOOP_C)
        if exe is None:
            return None
        proc = subprocess.run([str(exe), str(fd), str(rounds), hex(request), hex(flags),
                               *map(str, cycle)], pass_fds=(fd,), capture_output=True, text=True,
                              timeout=300)
        if proc.returncode:
            self.errors["set_loop"] = proc.stderr.strip()[-300:] or f"exit {proc.returncode}"
            return None
        return float(proc.stdout)

    def pipe_mib_s(self, total: int, chunk: int) -> float | None:
        """MiB/s of a C write/read loop through a pipe between two processes, or None."""
        exe = self.build("pipe_loop", PIPE_LOOP_C)
        if exe is None:
            return None
        proc = subprocess.run([str(exe), str(total), str(chunk)], capture_output=True, text=True,
                              timeout=600)
        if proc.returncode:
            self.errors["pipe_loop"] = f"exit {proc.returncode}"
            return None
        return float(proc.stdout)

    def close(self) -> None:
        self._dir.cleanup()
