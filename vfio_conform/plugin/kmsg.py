"""Kernel warnings fail the test: the kernel log is read before and after each test of a profile.

Before a test's setup the log of the profile's backend (backends' `kernel_log()`: /dev/kmsg for the
kernel backend, the sim's own log for the sim) is read to its end and the taint mask noted; after
its teardown the new records are searched for splats (device/kmsg.py). A new WARN, BUG, oops,
lockdep or refcount report, or a new taint flag, fails the test under `kernel.no-warnings` with
the excerpt in the message and as a report section: a driver that warns is not conformant even if
every ioctl returned the right value. A splat that names another process (e.g. another xdist
worker's system call) is left to that process. Where there is no log to read (a backend without
one, /dev/kmsg not readable) nothing is checked and the terminal summary says why.
"""
from __future__ import annotations

import os

from ..backends import registry
from ..device.kmsg import KernelWarning, find_warnings, new_taint, trace_modules
from ..base.errors import SpecViolation
from ..targets.items import item_param
from .logwatch import AroundTestWatch

RULE = "kernel.no-warnings"


class KernelLogWatch(AroundTestWatch):
    """pytest plugin: one log source per backend, read around every test of a profile."""

    watched = "kernel log"

    def __init__(self):
        self.sources: dict[str, object] = {}
        self.unavailable: dict[str, str] = {}
        self.taint: dict[str, int | None] = {}

    def _source(self, backend: str):
        if backend not in self.sources:
            try:
                opener = getattr(registry.get(backend), "kernel_log", None)
                self.sources[backend] = opener() if opener is not None else None
            except OSError as exc:
                self.sources[backend] = None
                self.unavailable[backend] = f"{exc.filename or 'kernel log'}: {exc.strerror or exc}"
        return self.sources[backend]

    def arm(self, item) -> None:
        profile = item_param(item, "profile")
        source = self._source(profile.backend) if profile is not None else None
        if source is None:
            return
        source.read_new()                   # what came before this test is not this test's
        self.taint[item.nodeid] = source.tainted()

    def finding(self, item) -> SpecViolation | None:
        profile = item_param(item, "profile")
        source = self.sources.get(profile.backend) if profile is not None else None
        if source is None or item.nodeid not in self.taint:
            return None
        before = self.taint.pop(item.nodeid)
        warnings = find_warnings(source.read_new(), pid=os.getpid())
        tainted = new_taint(before, source.tainted())
        if not warnings and not tainted:
            return None
        message, excerpt = describe(warnings, tainted)
        item.add_report_section("teardown", "kernel log", excerpt)
        return SpecViolation(RULE, message)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        for backend, why in sorted(self.unavailable.items()):
            terminalreporter.write_line(f"vfio-conform: kernel log of backend {backend!r} not "
                                        f"checked: {why}")


def describe(warnings: list[KernelWarning], tainted: str) -> tuple[str, str]:
    """(the finding's message: what was logged, then the excerpt; the excerpt alone)."""
    parts = [f"{w.kind}: {w.headline}" + (f" (in the trace: {', '.join(mods)})" if mods else "")
             for w in warnings for mods in [trace_modules(w.lines)]]
    if tainted:
        parts.append(f"new taint flags {tainted}")
    excerpt = "\n\n".join(w.excerpt() for w in warnings)
    head = f"the kernel logged {len(warnings)} warning(s) during the test: " + "; ".join(parts)
    return (head + ("\n" + excerpt if excerpt else "")), excerpt or head
