"""The matrix groups arc results (the record's arc_from/arc_to) into a FROM x TO grid in uAPI state order."""
from vfio_conform.report.matrix import build_matrix
from vfio_conform.report.outcomes import NOT_RUN, STALE_WAIVER, shown
from vfio_conform.report.outcome_counts import by_suite, latest_rows, suite_of
from vfio_conform.results.legacy import fill


def _row(tid, outcome="pass", link="", nodeid=None):
    """A row as a store written before the record had arc fields returns it (filled on read)."""
    return fill({"test_id": tid, "outcome": outcome, "link": link, "message": "",
                 "nodeid": nodeid or f"suites/fsm/test_arcs.py::{tid}"})


def test_old_rows_get_their_arc_from_the_test_id():
    assert _row("test_arc[sim-p2p-precopy:RUNNING->STOP_COPY]")["arc_from"] == "RUNNING"
    assert (_row("test_arc[mtty:RESUMING->INVALID(8)]")["arc_to"]) == "INVALID(8)"
    assert _row("test_arc[x.y_1:PRE_COPY_P2P->ERROR]")["arc_from"] == "PRE_COPY_P2P"
    assert _row("test_round_trip_restores_state[sim-p2p]")["arc_from"] == ""


def test_matrix_takes_the_arc_from_the_record_not_the_test_id():
    """A test id the old regex cannot read still lands in its cell; an arc-looking id without
    arc fields lands nowhere."""
    odd = {"test_id": "test_arc[weird id with no arrow]", "outcome": "fail", "link": "", "message": "",
           "nodeid": "x::y", "arc_from": "STOP_COPY", "arc_to": "PRE_COPY", "should": ""}
    decoy = {"test_id": "test_other[p:RUNNING->STOP]", "outcome": "fail", "link": "", "message": "",
             "nodeid": "x::z", "arc_from": "", "arc_to": "", "should": ""}
    m = build_matrix([odd, decoy])
    assert m.cells == {("STOP_COPY", "PRE_COPY"): odd}
    assert m.outcome("STOP_COPY", "PRE_COPY") == "fail"


def test_matrix_orders_states_and_marks_missing_cells():
    rows = [_row("test_arc[p:STOP->INVALID(8)]"), _row("test_arc[p:STOP->ERROR]", "fail"),
            _row("test_arc[p:RUNNING->STOP]", "gated"), _row("test_arc[p:STOP->RUNNING]"),
            _row("test_round_trip_restores_state[p]", "fail")]
    m = build_matrix(rows)
    assert m.rows == ["RUNNING", "STOP"]
    assert m.cols == ["RUNNING", "STOP", "ERROR", "INVALID(8)"]
    assert m.outcome("STOP", "ERROR") == "fail" and m.outcome("RUNNING", "STOP") == "gated"
    assert m.outcome("RUNNING", "ERROR") == NOT_RUN


def test_passing_waived_test_is_a_stale_waiver():
    assert shown(_row("t", "pass", "https://bug/1")) == STALE_WAIVER
    assert shown(_row("t", "known-issue", "https://bug/1")) == "known-issue"
    assert shown(_row("t", "pass")) == "pass"


def test_suites_and_latest_row_per_test():
    assert suite_of("suites/data/test_stream.py::test_x[p]") == "data"
    assert suite_of("suites/fsm/test_arcs.py::test_arc[p:STOP->STOP]") == "fsm"
    rows = [_row("a", "fail"), _row("a", "pass"), _row("b", nodeid="suites/data/t.py::b")]
    assert [r["outcome"] for r in latest_rows(rows)] == ["pass", "pass"]
    assert {k: dict(v) for k, v in by_suite(latest_rows(rows)).items()} == {"fsm": {"pass": 1},
                                                                           "data": {"pass": 1}}
