"""The diff: per profile new failures, fixes, changes, appeared/disappeared, and the gating exit code."""
from vfio_conform.report import sample
from vfio_conform.cli.report import main
from vfio_conform.report.diff import diff_runs
from vfio_conform.report.runs import load, resolve
from vfio_conform.results import ResultStore

A = "test_arc[p:RUNNING->STOP]"
B = "test_arc[p:STOP->RUNNING]"
C = "test_stop_copy_eof[p]"


def _diff(store, old, new):
    return diff_runs(load(store, resolve(store, str(old))), load(store, resolve(store, str(new))))


def test_categories(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    old = sample.write_run(store, "p", {A: ("fail", ""), B: ("pass", ""), C: ("known-issue", "http://b/1")},
                           kernel="6.1")
    new = sample.write_run(store, "p", {A: ("pass", ""), B: ("fail", ""), C: ("pass", "http://b/1")},
                           kernel="6.12", driver="sim2")
    (d,) = _diff(store, old, new)
    assert [c.test_id for c in d.new_failures] == [B] and d.regression
    assert {c.test_id for c in d.fixed} == {A, C}
    assert [c.test_id for c in d.stale_waivers] == [C]
    assert not d.changed and not d.appeared and not d.disappeared


def test_appeared_disappeared_and_renamed_profile(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    old = sample.write_run(store, "p", {})
    new = sample.write_run(store, "p-copy", {"test_arc[p-copy:STOP->STOP]": ("not-supported", "")},
                           repeat=2)
    (d,) = _diff(store, old, new)
    assert not d.regression and len(d.appeared) == 4 and not d.disappeared
    assert [c.key for c in d.changed] == ["test_arc[STOP->STOP]"]
    (back,) = _diff(store, new, old)
    assert len(back.disappeared) == 4 and not back.regression


def test_cli_exit_codes_text_and_html(tmp_path, capsys):
    path = tmp_path / "r.sqlite"
    store = ResultStore(path)
    base = sample.write_run(store, "p", {}, session="S1")
    same = sample.write_run(store, "p", {}, session="S2")
    bad = sample.write_run(store, "p", {B: ("fail", ""), A: ("infra-error", "")}, session="S3")
    store.close()
    html = tmp_path / "d.html"
    assert main(["diff", str(base), str(same), "--store", str(path), "--html", str(html)]) == 0
    assert "no regression" in capsys.readouterr().out and "no regression" in html.read_text()
    assert main(["diff", str(same), str(bad), "--store", str(path), "--html", str(html)]) == 1
    out = capsys.readouterr().out
    assert "new failures (1)" in out and B in out and "REGRESSION: p" in out
    assert "new infrastructure errors (1)" in out
    assert 'id="verdict">REGRESSION' in html.read_text()
    assert main(["diff", "prev", "latest", "--store", str(path), "--no-html"]) == 1
    assert main(["diff", "S1", "S2", "--store", str(path), "--no-html"]) == 0
    assert main(["diff", "S1", "S2", "--store", str(path), "--no-html", "--infra-is-regression"]) == 0
    assert main(["diff", "42", "S2", "--store", str(path), "--no-html"]) == 2


def test_multi_profile_sessions_pair_by_profile(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    for prof in ("p", "q"):
        sample.write_run(store, prof, {}, session="OLD")
    sample.write_run(store, "p", {}, session="NEW")
    sample.write_run(store, "q", {"test_arc[q:STOP->RUNNING]": ("fail", "")}, session="NEW")
    sample.write_run(store, "r", {}, session="NEW")
    diffs = diff_runs(load(store, resolve(store, "OLD")), load(store, resolve(store, "NEW")))
    by = {d.profile: d for d in diffs}
    assert set(by) == {"p", "q", "r"} and [d.profile for d in diffs if d.regression] == ["q"]
    assert by["r"].old is None and len(by["r"].appeared) == 67


def test_trend_lists_runs_oldest_first(tmp_path, capsys):
    from vfio_conform.report.trend import print_trend
    store = ResultStore(tmp_path / "r.sqlite")
    sample.write_run(store, "p", {}, kernel="6.1")
    sample.write_run(store, "p", {B: ("fail", "")}, kernel="6.12")
    assert print_trend(store, "p") == 0
    lines = capsys.readouterr().out.splitlines()
    assert "6.1 " in lines[2] and "6.12" in lines[3] and "▲ fail" in lines[3]
    assert print_trend(store, "nope") == 1


def _unfinished(store, profile, outcomes=None, status="incomplete", reason="killed", host="lab1", **kw):
    run = sample.write_run(store, profile, outcomes or {}, **kw)
    store._execute("UPDATE runs SET status = ?, reason = ?, host = ? WHERE id = ?", (status, reason, host, run))
    return run


def test_unfinished_new_run_fails_the_diff(tmp_path, capsys):
    path = tmp_path / "r.sqlite"
    store = ResultStore(path)
    sample.write_run(store, "p", {})
    _unfinished(store, "p")
    store.close()
    assert main(["diff", "prev", "latest", "--store", str(path), "--no-html"]) == 1
    out = capsys.readouterr().out
    assert "[incomplete: killed]" in out and "NOT COMPARABLE: p (new run #2 is incomplete (killed))" in out


def test_tests_missing_from_the_new_run_fail_unless_allowed(tmp_path, capsys):
    path = tmp_path / "r.sqlite"
    store = ResultStore(path)
    sample.write_run(store, "p", {})
    new = sample.write_run(store, "p", {})
    store._execute("DELETE FROM results WHERE run_id = ? AND test_id LIKE 'test_arc[p:STOP->%'", (new,))
    store.close()
    assert main(["diff", "prev", "latest", "--store", str(path), "--no-html"]) == 1
    assert "9 test(s) of the old run missing from the new one" in capsys.readouterr().out
    assert main(["diff", "prev", "latest", "--store", str(path), "--no-html", "--allow-missing"]) == 0


def test_prev_pairs_runs_of_the_same_host(tmp_path, capsys):
    path = tmp_path / "r.sqlite"
    store = ResultStore(path)
    mine = sample.write_run(store, "p", {})
    other = _unfinished(store, "p", {B: ("fail", "")}, status="finished", reason=None, host="lab2")
    latest = sample.write_run(store, "p", {})
    store.close()
    assert main(["diff", "prev", "latest", "--store", str(path), "--no-html"]) == 0
    assert f"run #{mine} [finished]" in capsys.readouterr().out
    assert main(["diff", "prev", "latest", "--store", str(path), "--no-html", "--any-host"]) == 0
    assert f"run #{other} [finished]" in capsys.readouterr().out
    # lab2's only run has nothing before it on lab2: a baseline, which passes the gate
    assert main(["diff", "prev", "latest", "--store", str(path), "--no-html", "--host", "lab2"]) == 0
    assert "baseline: the first run of p on host lab2" in capsys.readouterr().out
    assert latest > other


def test_report_shows_an_unfinished_run(tmp_path):
    path = tmp_path / "r.sqlite"
    store = ResultStore(path)
    run = _unfinished(store, "p", reason="terminated")
    store.close()
    out = tmp_path / "r.html"
    assert main(["report", str(run), "--store", str(path), "--out", str(out)]) == 0
    html = out.read_text()
    assert 'data-status="incomplete" data-reason="terminated"' in html and "terminated by SIGTERM" in html
