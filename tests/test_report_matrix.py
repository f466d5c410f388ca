"""The matrix groups test_arc results into a FROM x TO grid in uAPI state order."""
from vfio_conform.report.matrix import build_matrix, parse_arc
from vfio_conform.report.outcomes import NOT_RUN, STALE_WAIVER, shown
from vfio_conform.report.summary import by_suite, latest_rows, suite_of


def _row(tid, outcome="pass", link="", nodeid=None):
    return {"test_id": tid, "outcome": outcome, "link": link, "message": "",
            "nodeid": nodeid or f"suites/fsm/test_arcs.py::{tid}"}


def test_parse_arc_handles_profile_error_and_invalid_targets():
    assert parse_arc("test_arc[sim-p2p-precopy:RUNNING->STOP_COPY]") == ("RUNNING", "STOP_COPY")
    assert parse_arc("test_arc[mtty:RESUMING->INVALID(8)]") == ("RESUMING", "INVALID(8)")
    assert parse_arc("test_arc[x.y_1:PRE_COPY_P2P->ERROR]") == ("PRE_COPY_P2P", "ERROR")
    assert parse_arc("test_round_trip_restores_state[sim-p2p]") is None


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
