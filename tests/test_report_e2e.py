"""From a sim run to the HTML report and a gating diff: a fault knob makes a regression, exit 1."""
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from suite_runner import ROOT, run_suites, write_profile

NAME = "e2e-p2p"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vfio_conform.cli.report", *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)


def _sim_run(tmp, faults):
    """One arc-suite run of a sim-p2p copy named NAME into tmp/NAME.sqlite (run id 1)."""
    tmp.mkdir()
    run_suites(write_profile(tmp, "sim-p2p", NAME, faults=faults), tmp, "-k", "test_arc")
    return tmp / f"{NAME}.sqlite"


def test_sim_run_report_and_diff_gate(tmp_path):
    jobs = {"clean1": None, "clean2": None, "faulty": [{"name": "wrong_errno"}]}
    with ThreadPoolExecutor(3) as pool:
        stores = dict(zip(jobs, pool.map(lambda kv: _sim_run(tmp_path / kv[0], kv[1]), jobs.items())))

    page = tmp_path / "report.html"
    rep = _cli("report", "latest", "--store", str(stores["faulty"]), "--out", str(page))
    assert rep.returncode == 0, rep.stderr
    html = page.read_text()
    assert html.count('class="cell o-') >= 5 * 9 and 'data-outcome="fail"' in html
    assert "fsm.illegal-arc-einval" in html and "kernel release" in html

    same = _cli("diff", "1", "1", "--old-store", str(stores["clean1"]), "--store", str(stores["clean2"]),
                "--html", str(tmp_path / "same.html"))
    assert same.returncode == 0, same.stdout + same.stderr
    assert "no regression" in same.stdout and "unchanged: " in same.stdout

    bad = _cli("diff", "1", "latest", "--old-store", str(stores["clean1"]), "--store", str(stores["faulty"]),
               "--html", str(tmp_path / "bad.html"))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert f"REGRESSION: {NAME}" in bad.stdout and "[fsm.illegal-arc-einval]" in bad.stdout
    assert "REGRESSION" in (tmp_path / "bad.html").read_text()
