"""Sanitizer reports in a user-space server's output (AddressSanitizer, UndefinedBehaviorSanitizer).

A server built with `-fsanitize=address,undefined` prints a report on its stderr when it reads or
writes out of bounds, uses freed memory or hits undefined behaviour; UBSan then carries on, ASan
aborts the server. `find_reports` cuts such reports out of the text the server printed during a
test, and `ServerLogFile` reads a server's log file from where it was when the test started.
"""
from __future__ import annotations

import dataclasses
import os
import re

#: The first line of a report: ASan/LSan/TSan's '==PID==ERROR: ...Sanitizer: ...' or UBSan's
#: 'file:line:col: runtime error: ...'.
_ASAN = re.compile(r"^==\d+==\s*(ERROR|WARNING): (\w+Sanitizer): (.*)$")
_UBSAN = re.compile(r"^(?P<where>\S+:\d+:\d+): runtime error: (?P<what>.*)$")
_SUMMARY = re.compile(r"^SUMMARY: (\w+Sanitizer): ")
#: At most this many lines of one report are kept (the stack trace is what matters).
MAX_LINES = 40


@dataclasses.dataclass(frozen=True)
class SanitizerReport:
    kind: str            # AddressSanitizer, UndefinedBehaviorSanitizer, ...
    headline: str        # what it says, with where (UBSan)
    lines: tuple[str, ...]

    def excerpt(self) -> str:
        return "\n".join(self.lines)


def find_reports(text: str) -> list[SanitizerReport]:
    """The sanitizer reports in `text` (a server's output), in order."""
    lines = text.splitlines()
    out: list[SanitizerReport] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        asan, ubsan = _ASAN.match(line), _UBSAN.match(line)
        if asan:
            kind, headline = asan.group(2), asan.group(3)
            end = i + 1
            while end < len(lines) and end - i < MAX_LINES and not _SUMMARY.match(lines[end - 1]):
                end += 1
            out.append(SanitizerReport(kind, headline, tuple(lines[i:end])))
            i = end
        elif ubsan:
            end = i + 1      # UBSan's stack trace (UBSAN_OPTIONS=print_stacktrace=1) follows as '    #N ...'
            while end < len(lines) and end - i < MAX_LINES and lines[end].startswith("    #"):
                end += 1
            out.append(SanitizerReport("UndefinedBehaviorSanitizer",
                                       f"{ubsan.group('what')} at {ubsan.group('where')}", tuple(lines[i:end])))
            i = end
        else:
            i += 1
    return out


class ServerLogFile:
    """A server's log file (its stderr), read from where it ended when opened (or last read)."""

    def __init__(self, path: str):
        self.path = path
        self.pos = os.path.getsize(path)      # FileNotFoundError: no log to watch

    def read_new(self) -> str:
        try:
            size = os.path.getsize(self.path)
        except FileNotFoundError:
            return ""
        if size < self.pos:                   # truncated or replaced: read it from its start
            self.pos = 0
        with open(self.path, "rb") as f:
            f.seek(self.pos)
            data = f.read(size - self.pos)
        self.pos += len(data)
        return data.decode("utf-8", "replace")

    def close(self) -> None:
        pass
