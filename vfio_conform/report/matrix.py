"""The state x state grid of the arc tests' results (each row's arc_from/arc_to), in the uAPI's state order."""
from __future__ import annotations

import dataclasses
import re

from .outcomes import shown

#: enum vfio_device_mig_state order (ERROR last, then out-of-range requests).
STATE_ORDER = ["RUNNING", "STOP", "STOP_COPY", "RESUMING", "RUNNING_P2P", "PRE_COPY", "PRE_COPY_P2P",
               "ERROR"]


@dataclasses.dataclass
class Matrix:
    """rows: FROM states; cols: requested states; cells[(from, to)] = the result row (or absent)."""

    rows: list[str]
    cols: list[str]
    cells: dict[tuple[str, str], dict]

    def outcome(self, frm: str, to: str) -> str:
        return shown(self.cells.get((frm, to)))


def arc_of(row: dict) -> tuple[str, str] | None:
    """('RUNNING', 'STOP') for a row whose record names an arc; None for other tests."""
    frm, to = row.get("arc_from") or "", row.get("arc_to") or ""
    return (frm, to) if frm and to else None


def build_matrix(rows: list[dict]) -> Matrix:
    """Grid of one run's arc results (the last row wins when a test id repeats)."""
    cells: dict[tuple[str, str], dict] = {}
    for row in rows:
        arc = arc_of(row)
        if arc is not None:
            cells[arc] = row
    froms = {f for f, _ in cells}
    tos = {t for _, t in cells}
    return Matrix(sorted(froms, key=_rank), sorted(tos | (froms - {"ERROR"}), key=_rank), cells)


def _rank(state: str) -> tuple[int, int, str]:
    if state in STATE_ORDER:
        return (0, STATE_ORDER.index(state), "")
    m = re.fullmatch(r"INVALID\((\d+)\)", state)
    return (1, int(m.group(1)), "") if m else (2, 0, state)
