"""Errors raised by the QEMU lab: infrastructure failures, never test results."""
from __future__ import annotations

from ..base.errors import InfraError


class LabError(InfraError):
    """An infrastructure failure of the lab (missing tool, boot died, timeout, kernel crash).

    `kind` is a short machine-readable tag: "missing-tool", "download", "build",
    "boot", "timeout", "kernel-crash", "guest-setup", "poweroff" (the command ended, the guest did
    not power off: a device's removal or shutdown blocked).
    """

    def __init__(self, kind: str, message: str, *, console_log: str | None = None,
                 last_test: str | None = None) -> None:
        super().__init__(f"[{kind}] {message}")
        self.kind = kind
        self.message = message
        self.console_log = console_log
        self.last_test = last_test
