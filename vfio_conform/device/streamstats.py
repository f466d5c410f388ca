"""Bytes the harness moved through data fds and the time it took, and the process's peak memory.

DataFd.drain/copy_to and the suites' resume writes add to STATS; the plugin reads it around each
test (bytes moved, MiB/s per stream test) and reports the process's peak resident set (VmHWM).
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class StreamStats:
    bytes: int = 0
    seconds: float = 0.0

    def add(self, n: int, seconds: float) -> None:
        self.bytes += n
        self.seconds += seconds


STATS = StreamStats()


def peak_rss_mib() -> float:
    """This process's peak resident set size (VmHWM) in MiB (0.0 where /proc has none)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0
