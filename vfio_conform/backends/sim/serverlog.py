"""The sim's "server output": empty unless a fault knob makes the reference device print a
sanitizer report, as a user-space device server built with ASan/UBSan does on its stderr.

The sim runs in the harness's process, so the output is a list of lines here; `SimServerLog` reads
it from the position it had when opened (as device/sanitizers.ServerLogFile reads a server's log).
"""
from __future__ import annotations

_LINES: list[str] = []


def ubsan(where: str, what: str, frames: tuple[str, ...]) -> None:
    """Print an UndefinedBehaviorSanitizer report the way UBSan does (with print_stacktrace=1)."""
    _LINES.append(f"{where}: runtime error: {what}")
    _LINES.extend(f"    #{i} 0x{0x401000 + 16 * i:x} in {frame}" for i, frame in enumerate(frames))


class SimServerLog:
    """The sim's output from the position it had when opened."""

    def __init__(self):
        self.pos = len(_LINES)

    def read_new(self) -> str:
        new, self.pos = _LINES[self.pos:], len(_LINES)
        return "".join(line + "\n" for line in new)

    def close(self) -> None:
        pass
