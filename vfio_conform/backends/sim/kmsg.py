"""The sim's kernel log: empty unless a fault knob makes the reference device warn.

The sim runs in the harness's own process, so its "kernel" log is a list here; `SimKernelLog`
reads it from the position it had when opened, as DevKmsg reads /dev/kmsg. `warn()` appends the
lines of a WARN splat as the kernel prints them (the task line names this process).
"""
from __future__ import annotations

import os

from ...device.kmsg import KmsgRecord

_RECORDS: list[KmsgRecord] = []


def warn(message: str, where: str) -> None:
    """Log a WARN splat the way the kernel does: cut here, the WARNING line, the task, a trace."""
    lines = ["------------[ cut here ]------------", message,
             f"WARNING: CPU: 0 PID: {os.getpid()} at {where} [vfio_conform_sim]",
             f"CPU: 0 UID: 0 PID: {os.getpid()} Comm: python3 Tainted: G        W          6.12.0-sim",
             "Call Trace:", " <TASK>", f" {where}", " vfio_ioctl_device_feature_mig_device_state",
             " </TASK>", "---[ end trace 0000000000000000 ]---"]
    for text in lines:
        seq = len(_RECORDS)
        _RECORDS.append(KmsgRecord(4, seq, seq, text))


class SimKernelLog:
    """The sim's log from the position it had when opened; the sim taints nothing (None: unknown)."""

    def __init__(self):
        self.pos = len(_RECORDS)

    def read_new(self) -> list[KmsgRecord]:
        new, self.pos = _RECORDS[self.pos:], len(_RECORDS)
        return new

    def tainted(self) -> int | None:
        return None

    def close(self) -> None:
        pass
