"""The kernel log as records, and the warnings in it that make a driver non-conformant.

A driver that WARNs, BUGs, oopses, trips lockdep or a refcount check is broken even when every
ioctl returned the right value. `DevKmsg` reads /dev/kmsg from a saved position (opened
O_NONBLOCK, positioned at the end with SEEK_END, then read one record per read() until EAGAIN);
`find_warnings` groups the new records into the splats that count, each with its excerpt;
`new_taint` names the taint flags a test newly set (/proc/sys/kernel/tainted).

Record format (Documentation/ABI/testing/dev-kmsg): "prio,seq,usec,flags[,...];text\\n" followed by
" KEY=value" lines. A splat's lines are separate records; the one that names the task
("CPU: 0 UID: 0 PID: 1234 Comm: python3 ...") says which process was in the kernel.
"""
from __future__ import annotations

import dataclasses
import errno
import os
import re
from typing import Iterable, Protocol

KMSG_PATH = "/dev/kmsg"
TAINTED_PATH = "/proc/sys/kernel/tainted"

#: Lines that open a splat, with the kind they report (first match wins; the text is the record's).
_STARTS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((kind, re.compile(rx)) for kind, rx in (
    ("lockdep", r"^WARNING: (possible (circular|recursive) locking|inconsistent lock state|"
                r"suspicious RCU usage|bad unlock balance|lock held when returning)"),
    ("lockdep", r"^(DEBUG_LOCKS_WARN_ON|INFO: possible (circular|recursive|irq lock))"),
    ("refcount", r"^refcount_t: "),
    ("WARN", r"^WARNING: "),
    ("BUG", r"^(kernel BUG at |BUG: )"),
    ("oops", r"^(Oops|Internal error: Oops|general protection fault|Unable to handle kernel)"),
    ("corruption", r"^(list_(add|del) corruption|UBSAN: |KASAN: |KFENCE: )"),
    ("hung task", r"^INFO: task .* blocked for more than"),
    ("taint", r"^Disabling lock debugging due to kernel taint"),
))
_CUT_HERE = "------------[ cut here ]------------"
_END = re.compile(r"^---\[ end (trace|Kernel panic)")
_PID = re.compile(r"\bPID: (\d+)\b")
#: The location line of a WARN (after its message): part of the splat, never a new one.
_WARN_AT = re.compile(r"^WARNING: CPU: \d+ PID: \d+ at ")
#: A call-trace frame or RIP line that names a module: `name+0xoff/0xlen [module]`.
_FRAME = re.compile(r"[\w.]+\+0x[0-9a-f]+/0x[0-9a-f]+ \[(\w+)\]")
#: A splat longer than this is cut (the excerpt keeps its head: the message, task and call trace).
MAX_LINES = 60

#: Taint flag letters by bit (Documentation/admin-guide/tainted-kernels.rst).
TAINT_LETTERS = "PFSRMBUDAWCIOELKXTN"
#: Bits that a test does not cause by misbehaving: proprietary, out-of-tree, unsigned, livepatch,
#: test and auxiliary modules being loaded (the lab loads its mtty builds before any test).
_BENIGN_TAINT = {0, 12, 13, 15, 17}


@dataclasses.dataclass(frozen=True)
class KmsgRecord:
    """One /dev/kmsg record: its priority (facility and level), sequence number, time and text."""

    prio: int
    seq: int
    usec: int
    text: str


def parse_record(raw: bytes) -> KmsgRecord | None:
    """One record as /dev/kmsg's read() returns it; None for a line that is not one."""
    head, sep, rest = raw.decode("utf-8", "replace").partition(";")
    fields = head.split(",")
    if not sep or len(fields) < 3:
        return None
    try:
        prio, seq, usec = int(fields[0]), int(fields[1]), int(fields[2])
    except ValueError:
        return None
    return KmsgRecord(prio, seq, usec, rest.split("\n", 1)[0])


@dataclasses.dataclass(frozen=True)
class KernelWarning:
    """One splat: its kind (WARN, BUG, oops, lockdep, refcount, ...), the task it names, its lines."""

    kind: str
    lines: tuple[str, ...]
    pid: int | None = None

    @property
    def headline(self) -> str:
        return next((ln for ln in self.lines if ln != _CUT_HERE), self.lines[0])

    def excerpt(self) -> str:
        return "\n".join(self.lines)


class LogSource(Protocol):
    """Where a backend's kernel log comes from (a device backend provides one, or None)."""

    def read_new(self) -> list[KmsgRecord]:
        """Records written since the last call (or since the source was opened)."""

    def tainted(self) -> int | None:
        """The kernel's taint mask now (None: unknown)."""

    def close(self) -> None:
        """Release the source."""


class DevKmsg:
    """/dev/kmsg of the running kernel, read from the position it had when opened."""

    def __init__(self, path: str = KMSG_PATH, tainted_path: str = TAINTED_PATH):
        self.path, self.tainted_path = path, tainted_path
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        self.lost = 0           # records the kernel overwrote before they were read
        try:
            os.lseek(self.fd, 0, os.SEEK_END)
        except OSError:
            os.close(self.fd)
            raise

    def read_new(self) -> list[KmsgRecord]:
        records: list[KmsgRecord] = []
        while True:
            try:
                raw = os.read(self.fd, 8192)
            except BlockingIOError:
                return records
            except OSError as exc:
                if exc.errno == errno.EPIPE:        # overwritten: the next read gives the oldest kept
                    self.lost += 1
                    continue
                if exc.errno == errno.EINTR:
                    continue
                raise
            if not raw:
                return records
            record = parse_record(raw)
            if record is not None:
                records.append(record)

    def tainted(self) -> int | None:
        try:
            with open(self.tainted_path) as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _kind(text: str) -> str | None:
    for kind, rx in _STARTS:
        if rx.search(text):
            return kind
    return None


def find_warnings(records: Iterable[KmsgRecord], pid: int | None = None) -> list[KernelWarning]:
    """The splats among `records`, in order. With `pid`, a splat that names another task (another
    process's system call, e.g. a second worker's) is left out; one that names none is kept."""
    found: list[KernelWarning] = []
    lines: list[str] = []
    kind: str | None = None
    active = False

    def close() -> None:
        nonlocal lines, kind, active
        if active:
            pids = [int(m.group(1)) for ln in lines for m in [_PID.search(ln)] if m]
            owner = pids[0] if pids else None
            if pid is None or owner is None or owner == pid:
                found.append(KernelWarning(kind or "WARN", tuple(lines[:MAX_LINES]), owner))
        lines, kind, active = [], None, False

    for record in records:
        text = record.text
        if text.strip() == _CUT_HERE:           # a WARN's first line; the next says what it is
            close()
            lines, active = [text], True
            continue
        if active and kind is None:
            kind = _kind(text) or "WARN"
            lines.append(text)
            continue
        start = None if active and _WARN_AT.search(text) else _kind(text)
        if start is not None:
            close()
            lines, kind, active = [text], start, True
        elif active:
            lines.append(text)
            if _END.search(text):
                close()
    close()
    return found


def trace_modules(lines: Iterable[str]) -> tuple[str, ...]:
    """The modules a splat's call trace names (frames and RIP lines `func+0x1c/0x90 [module]`), in
    order; the `Modules linked in:` list names every loaded module and is not a frame."""
    return tuple(dict.fromkeys(m.group(1) for line in lines if not line.startswith("Modules linked in")
                               for m in [_FRAME.search(line)] if m))


def new_taint(before: int | None, after: int | None) -> str:
    """The taint flags set between `before` and `after` that a misbehaving driver sets
    ('W (bit 9)', ...); '' if none or unknown."""
    if before is None or after is None:
        return ""
    bits = [b for b in range(after.bit_length()) if after >> b & 1 and not before >> b & 1
            and b not in _BENIGN_TAINT]
    return ", ".join(f"{TAINT_LETTERS[b] if b < len(TAINT_LETTERS) else '?'} (bit {b})" for b in bits)
