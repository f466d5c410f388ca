"""Lab host side without a boot: progress lines while a guest runs, the guest command's options, and
the one summary table over imported runs (with host paths, JSON validated against the schema)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import jsonschema

from vfio_conform.qemu_lab.harness import LabRun, guest_argv
from vfio_conform.qemu_lab.progress_watch import ProgressWatch, progress_line
from vfio_conform.qemu_lab.boots_table import lab_summary

ROOT = Path(__file__).resolve().parents[2]


def test_progress_line_names_guest_profiles_counts_and_elapsed():
    assert progress_line("mdev", ["mtty", "mtty-sc"], None, 12) == \
        "vfio-conform lab: mdev guest (mtty, mtty-sc): booting / setting up devices, elapsed 0m12s"
    status = {"done": 50, "total": 200, "profile": "mtty-sc"}
    assert progress_line("mdev", ["mtty", "mtty-sc"], status, 3725) == \
        "vfio-conform lab: mdev guest (mtty, mtty-sc): 50/200 tests (25%), profile mtty-sc, elapsed 1h02m05s"


def test_watch_prints_from_the_status_file_and_stops(tmp_path):
    lines: list[str] = []
    status = tmp_path / "progress.json"
    status.write_text("stale")                      # an earlier boot's file is removed on entry
    with ProgressWatch("pci", ["qemu-edu"], [status], every=0.05, emit=lines.append):
        time.sleep(0.2)
        status.write_text(json.dumps({"done": 3, "total": 9, "profile": "qemu-edu"}))
        time.sleep(0.3)
    n = len(lines)
    time.sleep(0.15)
    assert len(lines) == n                          # the thread stopped with the context
    assert "booting" in lines[0]
    assert any(re.fullmatch(r"vfio-conform lab: pci guest \(qemu-edu\): 3/9 tests \(33%\), "
                            r"profile qemu-edu, elapsed 0m00s", line) for line in lines), lines


def test_watch_sums_the_status_files_of_several_guest_processes(tmp_path):
    files = [tmp_path / "progress-0.json", tmp_path / "progress-1.json"]
    watch = ProgressWatch("mdev", ["mtty", "mtty-sc"], files, every=0)
    with watch:
        assert watch.read() is None
        files[0].write_text(json.dumps({"done": 10, "total": 300, "profile": "mtty"}))
        assert watch.read() == {"total": None, "done": 10, "profile": "mtty"}   # one not started yet
        files[1].write_text(json.dumps({"done": 5, "total": 280, "profile": "mtty-sc"}))
        assert watch.read() == {"total": 580, "done": 15, "profile": "mtty, mtty-sc"}


def test_guest_command_writes_a_status_file_and_no_table_of_its_own():
    class Session:
        class config:
            mode = "mdev"

        @staticmethod
        def module_devices(module):
            return ["u0", "u1"]

    class Profile:
        name, path = "mtty", "/p/mtty.yaml"

        class lab:
            mode, module = "mdev", "mtty"

    (command,) = json.loads(guest_argv(Session, [Profile], None, [])[-1])["commands"]
    assert "--status-file /vfio-lab/results/progress.json --progress-every 0 --no-summary" in " ".join(command)


def test_lab_summary_over_imported_runs(tmp_path, capsys):
    """Runs imported from a guest are summarised with host paths (store read on the host)."""
    reports = tmp_path / "reports"
    proc = subprocess.run([sys.executable, "-m", "vfio_conform", "run", "--profile", "sim-stop-copy",
                           "-q", "--reports", str(reports), "--", "-k", "test_arc and RUNNING"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stdout[-2000:]
    run_dir = reports / "lab" / "20260101-000000-mdev"
    guest_run = run_dir / "reports" / "runs" / "20260101-000001-mtty-1"
    guest_run.mkdir(parents=True)
    home = reports / "runs" / "lab-20260101-000001-mtty-1"
    home.mkdir(parents=True)
    (home / "junit.xml").write_text("<testsuites/>")
    (reports / "runs" / f"lab-{run_dir.name}" / "allure-results").mkdir(parents=True)
    run = LabRun("mdev", ["sim-stop-copy"], 0, run_dir, run_ids=[1])
    profiles = lab_summary([run, LabRun("pci", ["x"], None, tmp_path / "dead")], reports, None)
    out = capsys.readouterr().out
    assert [p.profile for p in profiles] == ["sim-stop-copy"] and profiles[0].run_id == 1
    # the imported run ran a part of the suite: the verdict says so
    assert re.search(r"^sim-stop-copy .* CONFORMANT \(subset \d+/\d+\) +#1$", out, re.M), out
    assert f"JUnit:          {home / 'junit.xml'}" in out
    html = Path(re.search(r"^  HTML report:\s+(\S+)$", out, re.M).group(1))
    assert html.exists() and html.parent == reports / "runs" / f"lab-{run_dir.name}"
    doc = json.loads((reports / "lab" / f"{run_dir.name}-summary.json").read_text())
    jsonschema.validate(doc, json.loads((ROOT / "docs" / "json-summary.schema.json").read_text()))
    assert doc["profiles"][0]["reports"]["junit"] == str(home / "junit.xml")


def test_a_matrix_summary_is_named_for_no_single_kernel(tmp_path):
    """One boot's JSON summary carries its directory's name; several boots' (a kernel matrix) the
    first one's date and time alone, not its kernel and group."""
    from vfio_conform.qemu_lab.boots_table import _summary_stem
    first = LabRun("mdev", ["mtty"], 0, tmp_path / "lab-20261206-141421-6.1.0-57-amd64-mdev", run_ids=[1])
    second = LabRun("pci", ["qemu-edu"], 0, tmp_path / "lab-20261206-141619-7.3.4+deb13-amd64-pci", run_ids=[2])
    dead = LabRun("pci", ["x"], None, tmp_path / "lab-20261206-141500-6.12-pci")
    assert _summary_stem([first, dead]) == "lab-20261206-141421-6.1.0-57-amd64-mdev"
    assert _summary_stem([dead, first, second]) == "lab-20261206-141421"
