"""What a run loads at start: packages only some tests need are imported by those tests alone.

Under the lab's emulated CPU each imported package costs about twenty times what it does here, on
every run."""
import json
import subprocess
import sys
import tempfile

from run_cli import ROOT, env

#: Run `vfio-conform run` in-process and print which of the watched packages it loaded.
PROBE = """
import json, sys
from vfio_conform.cli.app import main
code = main(sys.argv[1:])
watched = ("hypothesis", "pytest_benchmark", "vfio_conform.suitelib.depth.walk", "vfio_conform.qemu_lab",
           "vfio_conform.plugin.inventory")
print("LOADED " + json.dumps({"code": code, "loaded": [m for m in watched if m in sys.modules]}))
"""


def _run(*args: str) -> dict:
    reports = tempfile.mkdtemp(prefix="vc-test-reports-")
    proc = subprocess.run([sys.executable, "-c", PROBE, "run", "--reports", reports, "--no-store", "-q",
                           "--no-summary", *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env=env())
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("LOADED ")]
    assert line, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(line[-1][len("LOADED "):])


def test_a_run_without_the_random_tests_never_imports_hypothesis():
    out = _run("--profile", "sim-stop-copy", "--", "-k", "test_zero_length_stream or test_arc")
    assert out["code"] == 0
    assert out["loaded"] == [], out        # nor the benchmark plugin, the lab tools, the inventory


def test_the_random_tests_import_it_when_they_run():
    out = _run("--profile", "sim-stop-copy", "--", "-k", "test_random_walk or test_mutated_streams")
    assert out["code"] == 0
    assert "hypothesis" in out["loaded"] and "vfio_conform.suitelib.depth.walk" in out["loaded"]


def test_a_profile_file_is_parsed_once_per_process_and_its_edits_are_seen(tmp_path, monkeypatch):
    """`run` reads each profile before pytest starts and again in pytest's configure: the YAML is
    parsed once; each load gets its own copy, and a changed file is parsed again."""
    from vfio_conform.profile import loader
    from vfio_conform.base.constants import PROFILES_DIR
    calls = []
    real = loader.load_marked
    monkeypatch.setattr(loader, "load_marked", lambda text, path: calls.append(path) or real(text, path))
    path = tmp_path / "p.yaml"
    path.write_text((PROFILES_DIR / "sim-stop-copy.yaml").read_text())
    first, second = loader.load_profile(path), loader.load_profile(path)
    assert first == second and len(calls) == 1
    one, two = loader.read_marked(path, "profile"), loader.read_marked(path, "profile")
    one.data["name"] = "changed-by-a-caller"
    assert two.data["name"] != "changed-by-a-caller"
    assert loader.read_marked(path, "profile").data["name"] != "changed-by-a-caller"
    path.write_text(path.read_text().replace("name: sim-stop-copy", "name: renamed"))
    assert loader.load_profile(path).name == "renamed" and len(calls) == 2


def test_no_summary_leaves_the_table_and_the_html_report_to_the_caller(tmp_path):
    """The lab's guest runs with --no-summary: the host renders the report from its own store, so
    the guest does not spend its emulated CPU on one nobody reads."""
    from run_cli import vc
    for flag, html in (("--no-summary", False), (None, True)):
        reports = tmp_path / ("quiet" if flag else "full")
        proc = vc("run", "--profile", "sim-stop-copy", "--reports", str(reports), "-q",
                  *([flag] if flag else []), "--", "-k", "test_zero_length_stream")
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert bool(list(reports.glob("runs/*/report.html"))) is html
        assert list(reports.glob("runs/*/summary.json"))
        assert ("CONFORMANT" in proc.stdout) is html
