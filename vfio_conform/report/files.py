"""Report files of stored runs, written one way: `vfio-conform report`, `export` and the run's end
render the runs with a format of report/formats.py and write the text through the shared output
writer (vfio_conform/base/outfile.py); a command says a refused output path (exit 2) or a failed write
(exit 3) in one line."""
from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from ..base.outfile import OutputError, OutputPathError, write_text


def write_report(store, runs: list[dict], out: str | Path, fmt: str = "html",
                 what: str = "HTML report") -> int:
    """The report of the stored `runs` of an open store in format `fmt` at `out` (in place for a
    device or FIFO); returns the number of results it shows."""
    from .formats import get
    from .runs import load
    data = load(store, runs)
    write_text(out, get(fmt).render(data), what)
    return sum(len(d.rows) for d in data)


def exit_code(command: str, write: Callable[[], object]) -> int:
    """Call `write` (it checks output paths and writes): 0; else one line on stderr and 2 for a
    refused path (OutputPathError), 3 for a write that failed (OutputError)."""
    try:
        write()
    except OutputPathError as exc:
        print(f"vfio-conform {command}: {exc}", file=sys.stderr)
        return 2
    except OutputError as exc:
        print(f"vfio-conform {command}: {exc}", file=sys.stderr)
        return 3
    return 0
