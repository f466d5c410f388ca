"""A guest that died of a kernel crash: the oops (or BUG, panic) from its console, and whom it blames.

The lab boots with `oops=panic panic=-1`, so an oops in a driver kills the guest: the test that was
running never reports. The console log still has the splat. When its call trace names the module
under test (a frame `func+0x1c/0x90 [mtty_oops]`, or the `RIP:` line), the driver broke the kernel
while the test drove it: that test is a failure under `kernel.no-warnings`, with the excerpt. A
crash whose trace names no driver under test (a TCG flake, the harness's own sysrq) stays an
infra-error. The `Modules linked in:` list names every loaded module and is not a frame.

The progress channel carries, besides one line per test started, the selection of each guest
process (`SELECTED_PREFIX profile<TAB>nodeid` lines written at collection), so the host knows which
tests never ran.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..device.kmsg import KmsgRecord, find_warnings, trace_modules

#: Progress lines that list a guest process's selection (plugin/hooks.py writes them).
SELECTED_PREFIX = "# selected "
_CONSOLE_TIME = re.compile(r"^\[\s*\d+\.\d+\]\s?")
_PANIC = re.compile(r"Kernel panic - not syncing: .*")
#: Console lines kept from a splat (head: message, task, RIP, call trace).
MAX_EXCERPT_LINES = 80


@dataclass(frozen=True)
class GuestCrash:
    """One kernel crash read from the console: what it said, its lines, the modules in its trace."""

    headline: str
    excerpt: str
    modules: tuple[str, ...]

    def names(self, module: str) -> bool:
        """True if `module` has a frame in the trace (module names compare with - and _ alike)."""
        want = module.replace("-", "_")
        return any(m.replace("-", "_") == want for m in self.modules)


def read_crash(console: str) -> GuestCrash | None:
    """The kernel splats of a console log (oops, BUG, general protection fault, panic), or None."""
    records = [KmsgRecord(0, i, 0, _CONSOLE_TIME.sub("", line))
               for i, line in enumerate(console.splitlines())]
    splats = [w for w in find_warnings(records) if w.kind in ("oops", "BUG", "corruption", "hung task")]
    panic = _PANIC.search(console)
    if not splats and panic is None:
        return None
    lines = [ln for w in splats for ln in w.lines]
    modules = trace_modules(lines)
    headline = splats[0].headline if splats else panic.group(0)
    if panic is not None and panic.group(0) not in lines:
        lines.append(panic.group(0))
    return GuestCrash(headline, "\n".join(lines[:MAX_EXCERPT_LINES]), modules)


@dataclass
class Progress:
    """What the guest's processes said on the progress channel: the selection, the tests started."""

    selected: dict[str, str]          # nodeid -> profile
    started: list[str]

    @property
    def last(self) -> str | None:
        return self.started[-1] if self.started else None


def read_progress(path: Path) -> Progress:
    """Parse the host's copy of the progress channel (missing file: nothing selected or started)."""
    selected: dict[str, str] = {}
    started: list[str] = []
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return Progress(selected, started)
    for line in text.splitlines():
        if line.startswith(SELECTED_PREFIX):
            profile, _, nodeid = line[len(SELECTED_PREFIX):].partition("\t")
            if nodeid:
                selected[nodeid.strip()] = profile
        elif line.strip():
            started.append(line.strip())
    return Progress(selected, started)
