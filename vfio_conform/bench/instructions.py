"""A command's user-space instruction count, from valgrind's cachegrind: the same number at every
run of the same work, where CPU time on a shared machine varies by 15 % or more.

`valgrind --tool=cachegrind --cache-sim=no` counts the instructions the process executes (its
`Ir` event) without simulating caches; the command runs about 20-40 times slower. Only the process
started is counted (not its children); system calls are not instructions of the process."""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile

#: The valgrind program (a name looked up on PATH, or a path).
VALGRIND = "valgrind"


class CountError(Exception):
    """The command could not be counted (valgrind failed, or wrote no count)."""


@dataclasses.dataclass(frozen=True)
class Counted:
    """One counted command: its instructions and exit code."""

    instructions: int
    exit: int


def available() -> str | None:
    """The valgrind program's path, or None when it is not installed."""
    return shutil.which(VALGRIND)


def start(cmd: list[str], out_file: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start `cmd` under cachegrind, its count going to `out_file` (its output discarded)."""
    return subprocess.Popen([VALGRIND, "--tool=cachegrind", "--cache-sim=no", "--trace-children=no",
                             f"--cachegrind-out-file={out_file}", "--", *cmd],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def read_count(out_file: str) -> int:
    """The instruction count of a cachegrind output file (its `summary:` line; the first event is Ir)."""
    try:
        with open(out_file, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("summary:"):
                    return int(line.split()[1])
    except (OSError, IndexError, ValueError) as exc:
        raise CountError(f"{out_file}: no instruction count ({exc})") from None
    raise CountError(f"{out_file}: no instruction count (no summary line)")


def count_together(cmds: dict[str, list[str]], env: dict[str, str] | None = None,
                   timeout: float = 1800.0) -> dict[str, Counted]:
    """Count several commands at once (the counts do not depend on what else runs): name -> Counted."""
    with tempfile.TemporaryDirectory(prefix="vc-instructions-") as tmp:
        procs = {name: start(cmd, os.path.join(tmp, f"{name}.out"), env) for name, cmd in cmds.items()}
        out: dict[str, Counted] = {}
        try:
            for name, proc in procs.items():
                try:
                    _, err = proc.communicate(timeout=timeout)
                except subprocess.TimeoutExpired:
                    raise CountError(f"{name}: not finished under valgrind within {timeout:.0f} s") from None
                try:
                    out[name] = Counted(read_count(os.path.join(tmp, f"{name}.out")), proc.returncode)
                except CountError:
                    last = err.strip().splitlines()[-1:] if err else []
                    raise CountError(f"{name}: valgrind exited {proc.returncode} without a count"
                                     + (f": {last[0]}" if last else "")) from None
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        return out
