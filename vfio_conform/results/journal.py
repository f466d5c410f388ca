"""An append-only journal of the results a run stores, one JSON line per result.

The companion of a store snapshot taken when a run begins: the snapshot holds the run rows, the
journal every result after it, each written to the file with one `write` as soon as the store has
it. On a share whose writes go straight to the host (the lab's uncached 9p), a machine that dies
mid-run loses nothing the store had; `replay` puts the journal's results into the snapshot.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from .model import TestRecord


#: Longest line: what one write to a pipe or FIFO delivers whole (PIPE_BUF on Linux), so the lines
#: of several processes journalling into one FIFO never interleave. Longer records lose the end of
#: their message and waiver reason in the journal (the store keeps them whole).
MAX_LINE = 4096


def encode(run_id: int, rec: TestRecord, source: str = "") -> bytes:
    """One journal line of at most MAX_LINE bytes; `source` names the store the run is in (several
    stores may journal into one file)."""
    data = rec.to_dict()
    for room in (None, 2000, 500, 0):
        if room is not None:
            data["message"] = data["message"][:room]
            data["waiver_reason"] = data["waiver_reason"][:room]
        item = {"store": source, "run": run_id, "record": data} if source else {"run": run_id, "record": data}
        line = (json.dumps(item, separators=(",", ":")) + "\n").encode()
        if len(line) <= MAX_LINE:
            return line
    raise ValueError(f"result {rec.nodeid!r} does not fit a journal line")


class Journal:
    """Appends (run id, record) lines to `path` (created empty; a FIFO is written as it is), each
    naming `source`, the store its runs are in, when several stores share the file."""

    def __init__(self, path: str | os.PathLike, source: str = "") -> None:
        self.path, self.source = Path(path), source
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)

    def append(self, run_id: int, rec: TestRecord) -> None:
        os.write(self.fd, encode(run_id, rec, self.source))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def read(path: str | os.PathLike, source: str | None = None) -> list[tuple[int, TestRecord]]:
    """The journal's whole lines, in order (a last line torn by a crash is left out); with `source`,
    only the lines of that store."""
    out = []
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            try:
                item = json.loads(line)
                if source is None or item.get("store", "") == source:
                    out.append((int(item["run"]), TestRecord.from_dict(item["record"])))
            except (ValueError, KeyError, TypeError):
                break
    return out


def replay(store, path: str | os.PathLike, source: str | None = None) -> int:
    """Add to `store` (a snapshot of the run's store) the journal's results it lacks (with `source`:
    of the lines naming that store): of each run, the n-th journal line is its n-th result, so the
    lines past the run's stored count are new. Returns how many were added."""
    entries = read(path, source)
    have: dict[int, int] = {}
    added = 0
    for run_id, rec in entries:
        if run_id not in have:
            if store.run(run_id) is None:
                continue
            have[run_id] = len(store.results(run_id))
        have[run_id] -= 1
        if have[run_id] < 0:
            store.record(run_id, rec)
            added += 1
    return added
