"""The harness as a kselftest (scripts/kselftest/run.sh): devices as tools/testing/selftests/vfio
takes them (-d BDF, plain BDFs, $VFIO_SELFTESTS_BDF), KTAP on stdout, kselftest exit codes (4:
skip when there is no device to test); and the LAVA test definition in examples/lava/ turns that
KTAP into LAVA test cases with pass/fail/skip/unknown."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import yaml

from run_cli import ROOT, env
from suite_runner import write_profile
from vfio_conform.tools.kselftest import KSFT_FAIL, KSFT_PASS, KSFT_SKIP, lava_results

RUN_SH = ROOT / "scripts" / "kselftest" / "run.sh"
LAVA = ROOT / "examples" / "lava" / "vfio-conform.yaml"


def _run_sh(*args: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess:
    e = env(**extra)
    if "VFIO_SELFTESTS_BDF" not in extra:
        e.pop("VFIO_SELFTESTS_BDF", None)
    return subprocess.run([str(RUN_SH), *args], capture_output=True, text=True, timeout=300, cwd=cwd, env=e)


def test_no_device_is_a_kselftest_skip(tmp_path):
    out = _run_sh(cwd=tmp_path)
    assert out.returncode == KSFT_SKIP == 4, out.stdout + out.stderr
    assert out.stdout.splitlines() == ["KTAP version 1", "1..0 # SKIP no device to test: pass PCI addresses "
                                       "(-d BDF) or set $VFIO_SELFTESTS_BDF"]
    (tmp_path / "sys" / "bus" / "pci" / "devices" / "0000:3b:00.1").mkdir(parents=True)
    gone = _run_sh("-p", "sim-p2p", "-d", "0000:3b:00.1", "-d", "0000:3b:00.2", cwd=tmp_path,
                   VFIO_CONFORM_SYSFS=str(tmp_path / "sys"))
    assert gone.returncode == KSFT_SKIP and "not a PCI device of this host: 0000:3b:00.2" in gone.stdout
    by_env = _run_sh(cwd=tmp_path, VFIO_SELFTESTS_BDF="0000:ff:1f.7")
    assert by_env.returncode == KSFT_SKIP and "0000:ff:1f.7" in by_env.stdout


def test_a_device_runs_and_prints_ktap(tmp_path):
    out = _run_sh("-p", "sim-stop-copy", "sim0", "--", "-k", "test_arc and RUNNING", cwd=tmp_path)
    assert out.returncode == KSFT_PASS, out.stdout[-2000:] + out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0] == "KTAP version 1" and re.match(r"^1\.\.1$", lines[1])
    assert re.search(r"^ok 1 sim-stop-copy", out.stdout, re.M)
    assert "vfio-conform summary" in out.stderr and "vfio-conform summary" not in out.stdout
    broken = write_profile(tmp_path, "sim-stop-copy", "broken", faults=[{"name": "wrong_errno"}])
    bad = _run_sh("-p", str(broken), "-d", "sim0", "--", "-k", "test_arc", cwd=tmp_path)
    assert bad.returncode == KSFT_FAIL and re.search(r"^not ok 1 broken", bad.stdout, re.M), bad.stdout[-2000:]
    results = dict(lava_results(bad.stdout))
    assert results["broken"] == "fail" and "fail" in results.values() and "pass" in results.values()


def test_ktap_to_lava_results():
    ktap = "\n".join(["KTAP version 1", "1..1", "    KTAP version 1", "    1..5",
                      "    ok 1 test_arc[p:RUNNING->STOP]", "    not ok 2 test_arc[p:STOP->RUNNING]",
                      "    ok 3 test_precopy[p] # SKIP not-supported: no PRE_COPY",
                      "    not ok 4 test_eof[p] # ERROR infra-error: timeout",
                      "    not ok 5 test_x[p] # XFAIL known issue https://bugs.example/1", "not ok 1 p"])
    assert lava_results(ktap) == [("test_arc_p_RUNNING-_STOP", "pass"), ("test_arc_p_STOP-_RUNNING", "fail"),
                                  ("test_precopy_p", "skip"), ("test_eof_p", "unknown"), ("test_x_p", "fail"),
                                  ("p", "fail")]


def test_lava_definition():
    doc = yaml.safe_load(LAVA.read_text())
    assert doc["metadata"]["format"] == "Lava-Test Test Definition 1.0"
    assert doc["metadata"]["name"] and doc["metadata"]["description"]
    assert set(doc["params"]) == {"BDF", "PROFILE", "PYTEST_ARGS"}
    steps = doc["run"]["steps"]
    assert all(isinstance(s, str) for s in steps)
    text = "\n".join(steps)
    assert "./scripts/kselftest/run.sh" in text and "VFIO_SELFTESTS_BDF=\"$BDF\"" in text
    assert "--lava-results vfio-conform.ktap" in text and "--format kcidb" in text
    # every vfio-conform command of it parses (it cannot drift from the CLI)
    from vfio_conform.cli.app import _parser
    for step in steps:
        argv = shlex.split(step.split(";")[0].split(">")[0])
        if argv and argv[0] == "vfio-conform":
            _parser().parse_args(argv[1:])
    assert (ROOT / "scripts" / "kselftest" / "run.sh").stat().st_mode & 0o111


def test_lava_steps_run_outside_lava(tmp_path):
    """The definition's steps in order (no lava-test-case: results are printed), on a sim device."""
    ktap = tmp_path / "vfio-conform.ktap"
    done = subprocess.run(f"{RUN_SH} -p sim-stop-copy sim0 -- -k 'test_arc and RUNNING' > {ktap}", shell=True,
                          cwd=tmp_path, env=env(), timeout=300, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    res = subprocess.run([os.environ.get("PYTHON", "python3"), "-m", "vfio_conform.tools.kselftest", "--lava-results",
                          str(ktap)], cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=60)
    lines = [ln.split() for ln in res.stdout.splitlines()]
    assert lines and all(len(ln) == 2 and ln[1] in ("pass", "skip") for ln in lines), res.stdout
    assert ["sim-stop-copy", "pass"] in lines
