"""The FSM model against the 8x8 tables of ../shared/reference/vfio-uapi.md (section 4.4)."""
import errno
import re

import pytest

from vfio_conform.model.fsm import FLAG_SETS, single_arcs, supports
from vfio_conform.model.plan import HANG_BLOCKED_ARC, WARN_FROM_ERROR, plan
from vfio_conform.uapi.enums import MigState

ABBREV = {"STOP": MigState.STOP, "RUN": MigState.RUNNING, "SC": MigState.STOP_COPY,
          "RES": MigState.RESUMING, "RP2P": MigState.RUNNING_P2P, "PC": MigState.PRE_COPY,
          "PCP2P": MigState.PRE_COPY_P2P}
COLUMNS = [MigState.STOP, MigState.RUNNING, MigState.STOP_COPY, MigState.RESUMING,
           MigState.RUNNING_P2P, MigState.PRE_COPY, MigState.PRE_COPY_P2P, MigState.ERROR]


def parse_tables(text: str) -> dict[int, dict[tuple[MigState, MigState], str]]:
    tables, flags = {}, None
    for line in text.splitlines():
        head = re.match(r"#### [A-D]\. .*\(flags=0x(\d)\)", line)
        if head:
            flags = int(head.group(1))
            tables[flags] = {}
            continue
        row = re.match(r"\| \*\*(\w+)\*\* \|(.*)\|\s*$", line)
        if flags is not None and row:
            cur = MigState[row.group(1)]
            for col, cell in zip(COLUMNS, row.group(2).split("|")):
                tables[flags][(cur, col)] = cell.strip()
        if line.startswith("### 4.5"):
            break
    return tables


@pytest.fixture(scope="module")
def tables(reference_dir):
    parsed = parse_tables((reference_dir / "vfio-uapi.md").read_text())
    assert sorted(parsed) == [1, 3, 5, 7], "reference tables A-D not found"
    return parsed


def expected_from_cell(cell: str):
    """(kind, path, fd) from a table cell."""
    if cell == "—":
        return ("unreachable", (), False)
    if cell.startswith("= (no-op)"):
        return ("noop", (), False)
    if cell == "EINVAL+WARN":
        return ("warn", (), False)
    if "HANG" in cell:
        return ("hang", (), False)
    if cell == "EINVAL":
        return ("einval", (), False)
    fd = cell.endswith("[fd]")
    path = tuple(ABBREV[s] for s in cell.removesuffix("[fd]").strip().split("→"))
    return ("path", path, fd)


@pytest.mark.parametrize("flags", [int(f) for f in FLAG_SETS])
def test_every_cell_matches_reference(tables, flags):
    checked = 0
    for (cur, target), cell in tables[flags].items():
        kind, path, fd = expected_from_cell(cell)
        if kind == "unreachable":
            assert not supports(flags, cur), f"{cur.name} is reachable with flags {flags}"
            continue
        p = plan(cur, target, flags)
        where = f"flags={flags} {cur.name}->{target.name}: reference '{cell}', model {p.describe()}"
        if kind == "noop":
            assert p.noop, where
        elif kind == "warn":
            assert p.errno == errno.EINVAL and p.hazard is WARN_FROM_ERROR, where
        elif kind == "hang":
            assert p.hazard is HANG_BLOCKED_ARC and p.errno == errno.EINVAL, where
            assert p.state_after == cur and not p.data_fd, where
        elif kind == "einval":
            assert p.errno == errno.EINVAL and p.hazard is None and p.state_after == cur, where
        else:
            assert (p.path, p.data_fd, p.errno, p.state_after) == (path, fd, 0, target), where
        checked += 1
    assert checked == len([c for c in tables[flags].values() if c != "—"])


@pytest.mark.parametrize("flags,count", [(1, 6), (3, 8), (5, 9), (7, 15)])
def test_single_arc_counts(flags, count):
    """Arc totals of vfio-uapi.md 4.3."""
    assert len(single_arcs(flags)) == count


@pytest.mark.parametrize("flags", [int(f) for f in FLAG_SETS])
def test_out_of_range_requests_are_einval(flags):
    for value in (8, 9, 255, 0xFFFFFFFF):
        p = plan(MigState.RUNNING, value, flags)
        assert p.errno == errno.EINVAL and p.state_after == MigState.RUNNING and p.hazard is None


def test_hazards_only_where_reference_says():
    hazards = {(c.name, t.name, f) for f in (1, 3, 5, 7) for c in MigState for t in MigState
               if supports(f, c) and plan(c, t, f).hazard is HANG_BLOCKED_ARC}
    assert hazards == {("STOP_COPY", "PRE_COPY", 5), ("STOP_COPY", "PRE_COPY", 7),
                       ("STOP_COPY", "PRE_COPY_P2P", 7)}


#: Requests the model must answer: every state, the first invalid value and large ones.
ALL_TARGETS = [*MigState, 8, 9, 0x80, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]


@pytest.mark.parametrize("flags", [int(f) for f in FLAG_SETS])
def test_plan_is_total(flags):
    """Every (current, target) has an answer, also for from-states the flags do not enable."""
    for cur in MigState:
        for target in ALL_TARGETS:
            p = plan(cur, target, flags)          # never raises
            if supports(flags, cur):
                continue
            where = f"flags={flags} {cur.name}->{MigState.label(target)}: {p.describe()}"
            if target == cur:
                assert p.noop and p.state_after == cur, where
            else:
                assert (p.errno, p.hazard, p.state_after, p.path, p.data_fd) == \
                    (errno.EINVAL, WARN_FROM_ERROR, cur, (), False), where


def test_plan_unsupported_current_is_consistent_across_targets():
    """PRE_COPY on a STOP_COPY-only device: every other target is the same WARN + EINVAL answer."""
    answers = {(plan(MigState.PRE_COPY, t, 1).errno, plan(MigState.PRE_COPY, t, 1).hazard)
               for t in ALL_TARGETS if t != MigState.PRE_COPY}
    assert answers == {(errno.EINVAL, WARN_FROM_ERROR)}
