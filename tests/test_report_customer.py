"""What a customer reads first: a verdict per profile, a summary, failures by rule, refused arcs, and
nothing internal or secret (the command row shows the user's command, without credentials or paths)."""
import re

import pytest

from run_cli import sqlite_rows, vc
from suite_runner import write_profile
from vfio_conform.base.exitcodes import Exit, verdict
from vfio_conform.model.spec import RULES
from vfio_conform.report import sample
from vfio_conform.cli.report import main as report_main
from vfio_conform.report.diff import diff_runs
from vfio_conform.report.html import render_report
from vfio_conform.report.outcomes import REFUSED, style
from vfio_conform.report.runs import load, resolve
from vfio_conform.results import Outcome, ResultStore, RunMeta, TestRecord
from vfio_conform.results.redact import public_command

SECRET = "hunter2"
#: The command a harness before this change recorded: the internal pytest line of `vfio-conform run`.
LEGACY_ARGV = ("/home/alice/src/vfio-conform/vfio_conform/suites --rootdir /home/alice/src/vfio-conform/"
               "vfio_conform -p no:cacheprovider -W ignore::pytest.PytestAssertRewriteWarning --junitxml "
               "/home/alice/src/vfio-conform/reports/runs/x/junit.xml --alluredir /tmp/allure --vc-profile "
               "/home/alice/src/vfio-conform/vfio_conform/profiles/mtty.yaml --vc-device mtty=abc "
               f"--vc-store postgresql://vc:{SECRET}@labdb.example/vfio --vc-progress-file /tmp/p -n 2 "
               "--dist loadgroup -q -k test_arc")


def _page(store, spec: str) -> str:
    return render_report(load(store, resolve(store, spec)))


def _banners(page: str) -> dict[str, str]:
    return {p: v for v, p in re.findall(r'class="verdict v-[a-z]+" data-verdict="([A-Z-]+)" '
                                        r'data-profile="([^"]+)"', page)}


def test_verdict_banner_and_summary_follow_the_cli_rules(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    a = "test_arc[{}:STOP->RUNNING]"
    sample.write_run(store, "clean", {a.format("clean"): ("known-issue", "http://b/1"),
                                      "test_stop_copy_eof[clean]": ("gated", "")}, session="S")
    sample.write_run(store, "broken", {a.format("broken"): ("fail", ""),
                                       "test_stop_copy_eof[broken]": ("infra-error", "")}, session="S")
    sample.write_run(store, "flaky-lab", {a.format("flaky-lab"): ("infra-error", "")}, session="S")
    killed = sample.write_run(store, "killed", {}, session="S")
    store.end_run(killed, "killed")
    page = _page(store, "S")
    want = {"clean": "CONFORMANT", "broken": "NON-CONFORMANT", "flaky-lab": "INCOMPLETE",
            "killed": "INCOMPLETE"}
    assert _banners(page) == want
    words = {Exit.CONFORMANT: "CONFORMANT", Exit.NONCONFORMANT: "NON-CONFORMANT", Exit.INCOMPLETE: "INCOMPLETE"}
    for run in load(store, resolve(store, "S")):         # the same rule as the CLI's exit code
        code = verdict((r["outcome"] for r in run.rows), run.meta["status"] == "finished")
        assert words[code] == want[run.profile]
    assert page.index('class="verdict') < page.index('<table class="summary"') < page.index("<section")
    summary = page[page.index('<table class="summary"'):]
    summary = summary[:summary.index("</table>")]
    head = re.findall(r"<th>([^<]+)</th>", summary)
    assert head == ["profile", "devices", "kernel", "pass", "fail", "not-supported", "known-issue", "gated",
                    "infra-error", "verdict", "run"]
    broken = re.sub(r"<[^>]+>", " ", summary.split("<tr>")[3]).split()
    assert broken == ["broken", "sim0,sim1", "6.12.0", "65", "1", "0", "0", "0", "1", "NON-CONFORMANT", "#2"]


def test_failures_are_grouped_by_rule_and_known_issues_are_not_failures(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    run = sample.write_run(store, "sim-p2p", sample.demo_outcomes("sim-p2p"))
    page = _page(store, str(run))
    by_rule = page[page.index('<table class="by-rule"'):]
    by_rule = by_rule[:by_rule.index("</table>")]
    rows = [re.sub(r"<[^>]+>", "|", r) for r in by_rule.split("<tr>")[2:]]
    assert len(rows) == 2
    legal = RULES["fsm.legal-arc"]
    assert "fsm.legal-arc|" in rows[0] and "|2|" in rows[0] and legal.text in rows[0]
    assert legal.source in rows[0].replace("&#x27;", "'")
    assert 'href="#t-1-test_arc[sim-p2p:RUNNING-&gt;STOP_COPY]"' in by_rule
    assert "stream.stop-copy-eof|" in rows[1] and "|1|" in rows[1]
    assert page.index("Failures by rule") < page.index("Failures (3)") < page.index("<details>")
    failures = page[page.index("Failures (3)"):page.index("Infrastructure errors")]
    assert "known-issue" not in failures and "RESUMING-&gt;ERROR" not in failures
    assert "Known issues (waived in the profile, with a link) (1)" in page


def test_refused_arcs_have_their_own_glyph_and_the_legend_uses_cli_names(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    run = sample.write_run(store, "p", {})
    old = store.begin_run(RunMeta("p", "sim", "a", "sim", "6.1", "0.0.1", "h", "old", "x"))
    store.record(old, TestRecord("n::t", "test_arc[p:STOP->ERROR]", Outcome.PASS, 0.1, arc_from="STOP",
                                 arc_to="ERROR"))
    store._execute("UPDATE results SET arc_expect = NULL, test_key = NULL WHERE run_id = ?", (old,))
    page = _page(store, str(run))
    cell = r'data-from="{}" data-to="{}" data-outcome="([a-z-]+)" title="[^"]*">([^<]*)</td>'
    assert re.search(cell.format("RUNNING", "ERROR"), page).groups() == (REFUSED, style(REFUSED).glyph)
    assert re.search(cell.format("RUNNING", "STOP"), page).groups() == ("pass", "✓")
    assert style(REFUSED).glyph not in ("✓", "") and style(REFUSED).color != style("pass").color
    legend = page[page.index('<div class="legend">'):]
    legend = re.findall(r"</i>\S+ ([^<]+)</span>", legend[:legend.index("</div>")])
    assert {o.value for o in Outcome} <= set(legend)
    assert "pass (correctly refused)" in legend and not {"hazard-skipped", "known issue"} & set(legend)
    assert re.search(cell.format("STOP", "ERROR"), _page(store, str(old))).group(1) == REFUSED  # old store


def test_command_row_of_an_old_store_is_the_user_command_without_secrets(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    run = sample.write_run(store, "mtty", {"test_stop_copy_eof[mtty]": ("fail", "")}, argv=LEGACY_ARGV)
    page = _page(store, str(run))
    assert SECRET not in page and "/home/alice" not in page and "--rootdir" not in page
    row = re.search(r"<td>command</td><td>([^<]*)</td>", page).group(1)
    assert row == ("vfio-conform run --profile mtty.yaml --device mtty=abc --store "
                   "&#x27;postgresql://***@labdb.example/vfio&#x27; -n 2 -q -- -k test_arc")


@pytest.mark.parametrize("text, shown", [
    ("vfio-conform run --store postgresql://u:pw@db:5432/x?sslmode=require", "postgresql://***@db:5432/x"),
    ("vfio-conform run --store 'postgresql://u@/x?host=/run/pg&password=pw'", "password=***"),
    ("pytest --vc-store=sqlite:////srv/lab/results.sqlite", "--vc-store=sqlite:///results.sqlite"),
    ("pytest /home/a/checkout/vfio_conform/suites/fsm --vc-profile /home/a/p/x.yaml",
     "pytest fsm --vc-profile x.yaml"),
])
def test_public_command_removes_credentials_and_local_paths(text, shown):
    out = public_command(text)
    assert shown in out and "pw" not in out.replace("password", "") and "/home" not in out and "/srv" not in out
    assert public_command(out) == out


def test_a_run_records_the_user_command_and_profile_free_keys(tmp_path):
    """Two runs of one device under two profile names (one with dashes) line up in the diff."""
    store = tmp_path / "r.sqlite"
    renamed = write_profile(tmp_path, "sim-p2p", "vendor-x-p2p")
    sel = "test_data_size_in_every_state or (test_arc and RUNNING)"
    for profile in ("sim-p2p", str(renamed)):
        proc = vc("run", "--profile", profile, "--store", str(store), "-q", "--", "-k", sel)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    argv = [r["argv"] for r in sqlite_rows(store, "SELECT argv FROM runs ORDER BY id")]
    assert argv == [f"vfio-conform run --profile sim-p2p --store r.sqlite -q -- -k '{sel}'",
                    f"vfio-conform run --profile vendor-x-p2p.yaml --store r.sqlite -q -- -k '{sel}'"]
    rows = {r["test_id"]: r for r in sqlite_rows(store, "SELECT * FROM results WHERE run_id = 2")}
    assert rows["test_data_size_in_every_state[vendor-x-p2p-STOP]"]["test_key"] == \
        "test_data_size_in_every_state[STOP]"
    assert rows["test_arc[vendor-x-p2p:RUNNING->STOP]"]["test_key"] == "test_arc[RUNNING->STOP]"
    assert rows["test_arc[vendor-x-p2p:RUNNING->STOP]"]["arc_expect"] == "accept"
    assert rows["test_arc[vendor-x-p2p:RUNNING->ERROR]"]["arc_expect"] == "refuse"
    assert rows["test_arc[vendor-x-p2p:RUNNING->PRE_COPY]"]["arc_expect"] == "refuse"   # p2p lacks it
    assert rows["test_data_size_in_every_state[vendor-x-p2p-STOP]"]["arc_expect"] == ""
    s = ResultStore(store, readonly=True)
    (d,) = diff_runs(load(s, resolve(s, "1")), load(s, resolve(s, "2")))
    assert not d.appeared and not d.disappeared and not d.changed and d.unchanged == len(rows)


def _dashed_rows(store, profile: str, keyed: bool) -> int:
    run = store.begin_run(RunMeta(profile, "sim", "a", "sim", "6.1", "0.0.1", "h", profile, "x"))
    for state in ("STOP", "RUNNING_P2P"):
        tid = f"test_data_size_in_every_state[{profile}-{state}]"
        store.record(run, TestRecord(f"suites/depth/test_datasize.py::{tid}", tid, Outcome.PASS, 0.1,
                                     profile=profile,
                                     test_key=f"test_data_size_in_every_state[{state}]" if keyed else ""))
    store.end_run(run, "finished")
    return run


@pytest.mark.parametrize("keyed", [True, False], ids=["recorded-key", "old-store"])
def test_diff_lines_up_tests_of_profiles_with_dashes(tmp_path, keyed):
    store = ResultStore(tmp_path / "r.sqlite")
    old, new = _dashed_rows(store, "sim-p2p", keyed), _dashed_rows(store, "vendor-x", keyed)
    if not keyed:
        store._execute("UPDATE results SET test_key = NULL")
    (d,) = diff_runs(load(store, resolve(store, str(old))), load(store, resolve(store, str(new))))
    assert not d.appeared and not d.disappeared and d.unchanged == 2


def test_password_in_the_store_url_reaches_neither_store_nor_report(pg_server, tmp_path):
    url = pg_server("secret").replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@")
    proc = vc("run", "--profile", "sim-p2p", "--store", url, "-q", "--", "-k", "test_migration_flags_are_valid")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    page = tmp_path / "report.html"
    assert report_main(["report", "latest", "--store", url, "--out", str(page)]) == 0
    html = page.read_text()
    assert SECRET not in html and "postgresql://***@/secret" in html
    assert 'data-verdict="CONFORMANT-SUBSET" data-profile="sim-p2p"' in html   # a -k run: a subset


def test_a_direct_pytest_run_records_pytest_without_local_paths(tmp_path):
    from suite_runner import ROOT, run_suites
    code, rows, out = run_suites(write_profile(tmp_path, "sim-p2p", "direct"), tmp_path, "-k",
                                 "test_migration_flags_are_valid")
    assert code == 0 and rows, out[-2000:]
    (argv,) = [r["argv"] for r in sqlite_rows(tmp_path / "direct.sqlite", "SELECT argv FROM runs")]
    assert argv.startswith("pytest suites --rootdir ") and "--vc-profile direct.yaml" in argv
    assert str(ROOT) not in argv and str(tmp_path) not in argv and " /" not in argv
