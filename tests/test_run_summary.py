"""The end of `vfio-conform run`: one summary table, report paths, the JSON summary (validated
against docs/json-summary.schema.json), `results --json`, progress lines, and no -ra leak."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import jsonschema
import pytest

from run_cli import ROOT, env, vc
from suite_runner import write_profile
from vfio_conform.report.run_verdicts import ProfileSummary, Verdict, full_counts, overall

SCHEMA = json.loads((ROOT / "docs" / "json-summary.schema.json").read_text())
HEAD = re.compile(r"^profile\s+device\(s\)\s+kernel\s+pass\s+fail\s+not-supported\s+known-issue\s+"
                  r"gated\s+infra-error\s+verdict\s+run$", re.M)


def validate(doc: dict) -> None:
    jsonschema.validate(doc, SCHEMA, format_checker=jsonschema.FormatChecker())


@pytest.fixture(scope="module")
def checkout_run():
    """`run --profile sim-p2p -q` from the checkout with reports under it (where the checkout's own
    pyproject.toml with addopts -ra is an ancestor of the store path)."""
    reports = ROOT / "reports" / f"test-summary-{uuid.uuid4().hex[:8]}"
    proc = subprocess.run([sys.executable, "-m", "vfio_conform", "run", "--profile", "sim-p2p", "-q",
                           "--reports", str(reports)], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env=env())
    yield proc, reports
    shutil.rmtree(reports, ignore_errors=True)


def test_run_ends_with_one_table_not_skipped_lines(checkout_run):
    proc, reports = checkout_run
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "SKIPPED [" not in out and "short test summary info" not in out, out[-3000:]
    assert len(HEAD.findall(out)) == 1, out[-3000:]
    table = out[HEAD.search(out).start():]
    assert out.index(" passed") < HEAD.search(out).start()       # after pytest's own summary
    row = next(line for line in table.splitlines() if line.startswith("sim-p2p "))
    cells = row.split()
    assert cells[1:3] == ["sim0,", "sim1"] and cells[-2] == "CONFORMANT" and cells[-1].startswith("#")
    stored = re.search(r"^sim-p2p: run #(\d+) finished; not-supported=(\d+) pass=(\d+)$", out, re.M)
    assert cells[4:10] == [stored.group(3), "0", stored.group(2), "0", "0", "0"]
    assert cells[-1] == f"#{stored.group(1)}"
    assert re.search(r"^session: [0-9a-f]{12}$", table, re.M)
    for label in ("HTML report", "JUnit", "Allure results", "JSON summary"):
        path = re.search(rf"^  {label}:\s+(\S+)$", table, re.M).group(1)
        assert Path(path).exists() and Path(path).is_relative_to(reports), (label, path)
    assert "vfio-conform summary: CONFORMANT" in out[:HEAD.search(out).start()].splitlines()[-1]


def test_json_summary_matches_the_schema_and_the_store(checkout_run):
    proc, reports = checkout_run
    path = Path(re.search(r"^  JSON summary:\s+(\S+)$", proc.stdout, re.M).group(1))
    doc = json.loads(path.read_text())
    validate(doc)
    (prof,) = doc["profiles"]
    assert prof["profile"] == "sim-p2p" and prof["verdict"] == doc["verdict"] == "CONFORMANT"
    assert prof["status"] == "finished" and prof["reason"] is None
    assert prof["devices"] == ["sim0", "sim1"] and prof["reports"]["json"] == str(path)
    res = vc("results", "--store", reports / "results.sqlite", "--run", prof["run_id"], "--json")
    assert res.returncode == 0, res.stderr
    stored = json.loads(res.stdout)
    validate(stored)
    assert stored["profiles"][0]["counts"] == prof["counts"]
    assert stored["profiles"][0]["total"] == prof["total"] > 0
    assert stored["profiles"][0]["reports"]["junit"] == prof["reports"]["junit"]
    html = Path(prof["reports"]["html"]).read_text()
    assert "sim-p2p" in html


def test_violation_is_non_conformant_in_table_and_json(tmp_path):
    profile = write_profile(tmp_path, "sim-p2p", "broken-p2p", faults=[{"name": "wrong_errno"}])
    out_json = tmp_path / "out" / "summary.json"
    out_json.parent.mkdir()         # --json names a file in an existing directory
    proc = vc("run", "--profile", profile, "-q", "--reports", tmp_path / "r", "--json", out_json,
              "--", "-k", "test_arc")
    assert proc.returncode == 1, proc.stdout[-2000:]
    row = next(line for line in proc.stdout.splitlines() if line.startswith("broken-p2p "))
    assert "NON-CONFORMANT" in row
    doc = json.loads(out_json.read_text())
    validate(doc)
    assert doc["verdict"] == "NON-CONFORMANT" and doc["profiles"][0]["counts"]["fail"] > 0
    assert f"JSON summary:   {out_json}" in proc.stdout


def test_no_store_run_has_a_summary_without_run_ids(tmp_path):
    proc = vc("run", "--profile", "sim-stop-copy", "--no-store", "-q", "--reports", tmp_path,
              "--", "-k", "test_arc and RUNNING")
    assert proc.returncode == 0, proc.stdout[-2000:]
    row = next(line for line in proc.stdout.splitlines() if line.startswith("sim-stop-copy "))
    assert re.fullmatch(r".* CONFORMANT \(subset 15/2\d\d\) +-", row), row    # a -k run: a subset
    assert re.search(r"^  HTML report:\s+\(not written\)$", proc.stdout, re.M)
    path = Path(re.search(r"^  JSON summary:\s+(\S+)$", proc.stdout, re.M).group(1))
    doc = json.loads(path.read_text())
    validate(doc)
    assert doc["profiles"][0]["run_id"] is None and doc["profiles"][0]["counts"]["pass"] > 0


def test_results_json_lists_runs_and_validates(checkout_run):
    _, reports = checkout_run
    res = vc("results", "--store", reports / "results.sqlite", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    validate(doc)
    assert [p["profile"] for p in doc["profiles"]] == ["sim-p2p"]


def test_progress_lines_and_status_file(tmp_path):
    status = tmp_path / "progress"
    proc = vc("run", "--profile", "sim-stop-copy", "--no-store", "-q", "--reports", tmp_path,
              "--progress-every", "0.000001", "--progress-file", status, "--", "-k", "test_arc and STOP")
    assert proc.returncode == 0, proc.stdout[-2000:]
    lines = re.findall(r"^vfio-conform: progress: (\d+)/(\d+) tests \((\d+)%\), profile (\S+), "
                       r"elapsed \d+m\d\ds$", proc.stdout, re.M)
    assert lines, proc.stdout[-2000:]
    total = int(lines[0][1])
    assert [int(d) for d, *_ in lines] == list(range(1, total + 1))
    assert {p for *_, p in lines} == {"sim-stop-copy"}
    doc = json.loads(Path(f"{status}.json").read_text())
    assert doc == {**doc, "done": total, "total": total, "finished": True,
                   "per_profile": {"sim-stop-copy": total}}
    lines = status.read_text().splitlines()            # the per-test file the lab reads is kept:
    selected = [ln for ln in lines if ln.startswith("# selected ")]   # the selection first,
    assert len(selected) == total and len(lines) - len(selected) == total   # then one line per test


def test_default_progress_does_not_flood_a_short_run(tmp_path):
    proc = vc("run", "--profile", "sim-stop-copy", "--no-store", "-q", "--reports", tmp_path,
              "--", "-k", "test_arc and STOP")
    assert proc.returncode == 0
    assert "vfio-conform: progress:" not in proc.stdout


def _summary(counts: dict, status: str = "finished") -> ProfileSummary:
    return ProfileSummary("p", ("d",), "k", full_counts(counts), status)


@pytest.mark.parametrize("counts, status, verdict", [
    ({"pass": 3, "not-supported": 1, "known-issue": 1, "gated": 1}, "finished", Verdict.CONFORMANT),
    ({"pass": 3, "fail": 1}, "finished", Verdict.NON_CONFORMANT),
    ({"pass": 3, "fail": 1}, "incomplete", Verdict.NON_CONFORMANT),
    ({"pass": 3, "infra-error": 1}, "finished", Verdict.INCOMPLETE),
    ({"pass": 3, "skipped": 1}, "finished", Verdict.INCOMPLETE),
    ({"pass": 3}, "incomplete", Verdict.INCOMPLETE),
    ({}, "incomplete", Verdict.INCOMPLETE),
])
def test_verdict_per_profile(counts, status, verdict):
    assert _summary(counts, status).verdict is verdict


def test_overall_verdict_order():
    ok, bad, inc = _summary({"pass": 1}), _summary({"fail": 1}), _summary({"pass": 1}, "incomplete")
    assert overall([ok, inc]) is Verdict.INCOMPLETE
    assert overall([inc, bad, ok]) is Verdict.NON_CONFORMANT
    assert overall([ok]) is Verdict.CONFORMANT
    assert overall([]) is Verdict.INCOMPLETE


def test_table_shows_a_skipped_column_only_when_used():
    from vfio_conform.report.end_table import render
    assert "skipped" not in render([_summary({"pass": 1})])
    text = render([_summary({"pass": 1, "skipped": 2}, "incomplete")])
    head = next(line for line in text.splitlines() if line.startswith("profile"))
    assert head.split()[-3:] == ["skipped", "verdict", "run"]


def test_results_json_without_a_store_is_an_empty_document(tmp_path):
    res = vc("results", "--store", tmp_path / "none.sqlite", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    validate(doc)
    assert doc["profiles"] == [] and doc["sessions"] == []
