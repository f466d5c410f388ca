"""`vfio-conform bench` runs each section and prints ratios against baselines measured in the same
run, stores them as JSON, and `--diff` flags a regression. Nothing here asserts a speed."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from vfio_conform.bench.results import compare, save
from vfio_conform.bench.scaling import fit, workload


def bench(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "vfio_conform", "bench", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_transitions_print_ratios_and_are_stored(tmp_path):
    out = tmp_path / "b.json"
    proc = bench("--only", "transitions", "--seconds", "0.2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "bare Python" in proc.stdout and "x (" in proc.stdout and "C loop n/a" in proc.stdout
    data = json.loads(out.read_text())
    res = data["transitions"]
    assert res["backend"] == "sim" and res["harness_us"] > 0 and res["python_us"] > 0
    assert res["ratio_python"] == pytest.approx(res["harness_us"] / res["python_us"], rel=0.01)
    assert data["format"] == 1 and data["sections"] == ["transitions"]


def test_streams_print_throughput_and_memory_ratios(tmp_path):
    out = tmp_path / "s.json"
    proc = bench("--only", "streams", "--state-size", "4M", "--out", str(out))
    assert "streams: 4 MiB state" in proc.stdout and "content verified" in proc.stdout, proc.stderr
    res = json.loads(out.read_text())["streams"]
    assert res["verified"] and res["moved"] > 4 << 20
    if res["c_pipe_mib_s"]:
        assert res["throughput_ratio"] == pytest.approx(res["harness_mib_s"] / res["c_pipe_mib_s"], rel=0.01)
    assert "rss_growth_mib" in res and "C pipe loop" in proc.stdout
    copy, sim = res["pipe_copy"], res["sim"]
    if copy.get("c_mib_s"):
        assert copy["complete"] and copy["digest"] == "xxh3_128" and "pipe copy" in proc.stdout
        assert copy["ratio"] == pytest.approx(copy["harness_mib_s"] / copy["c_mib_s"], rel=0.01)
    assert sim["produce_mib_s"] > 0 and sim["check_mib_s"] > 0 and "sim alone" in proc.stdout


def test_bad_size_is_one_line_exit_2():
    proc = bench("--only", "streams", "--state-size", "lots", "--no-save")
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "--state-size" in proc.stderr


def test_diff_flags_a_regression(tmp_path):
    old, new, same = tmp_path / "old.json", tmp_path / "new.json", tmp_path / "same.json"
    save(old, {"transitions": {"ratio_python": 1.2}, "streams": {"throughput_ratio": 0.9}})
    save(same, {"transitions": {"ratio_python": 1.25}, "streams": {"throughput_ratio": 0.88}})
    save(new, {"transitions": {"ratio_python": 2.0}, "streams": {"throughput_ratio": 0.9}})
    assert [r[3] for r in compare(json.loads(old.read_text()), json.loads(new.read_text()))] == [True, False]
    ok = bench("--diff", str(old), str(same))
    assert ok.returncode == 0 and "REGRESSION" not in ok.stdout
    bad = bench("--diff", str(old), str(new))
    assert bad.returncode == 1 and "REGRESSION transitions.ratio_python" in bad.stdout
    (tmp_path / "junk.json").write_text("[]")
    junk = bench("--diff", str(old), str(tmp_path / "junk.json"))
    assert junk.returncode == 2 and "not a vfio-conform bench result" in junk.stderr


def test_scaling_fit_and_workload():
    a, b, r2 = fit([1, 2, 4, 8], [3.0, 5.0, 9.0, 17.0])
    assert (a, b, r2) == pytest.approx((1.0, 2.0, 1.0))
    assert fit([1, 2, 4, 8], [1, 4, 16, 64])[2] < 1.0
    run = workload(2)
    assert run["devices"] == 2 and run["seconds"] > 0 and run["hwm_kib"] > 0


def test_lab_parallel_reports_no_speed_up_when_a_run_did_not_finish():
    from vfio_conform.bench.labpar import render
    base = {"profiles": ["mtty"], "workers": 2, "guest_cpus": 2, "serial_s": 120.0, "parallel_s": 300.0,
            "speedup": 0.4, "efficiency": 0.2, "exit_serial": [0]}
    hung = render({**base, "exit_parallel": [None]})
    assert "did not finish" in hung and "no speed-up measured" in hung and "0.40x" not in hung
    ok = render({**base, "parallel_s": 70.0, "speedup": 1.714, "efficiency": 0.857, "exit_parallel": [0]})
    assert "speed-up 1.71x = 0.86 N" in ok
    assert "boot included, 2 workers): 70 s (OVER the 60 s target)" in ok
    assert "(within the 60 s target)" in render({**base, "parallel_s": 55.0, "speedup": 2.2,
                                                 "efficiency": 1.1, "exit_parallel": [0]})
    assert "raw parallel ceiling of the guest: not measured (no result)" in ok
    assert "the guest's command alone (boot and the host's import excluded): not measured" in ok
    timed = render({**base, "parallel_s": 70.0, "speedup": 1.2, "efficiency": 0.6, "exit_parallel": [0],
                    "serial_command_s": 40.0, "parallel_command_s": 25.0, "command_speedup": 1.6})
    assert "1 process 40 s, 2 workers 25 s -> 1.60x = 0.80 N" in timed
    assert "the test sessions alone (each process's start-up excluded): not measured" in timed
    sessions = render({**base, "parallel_s": 70.0, "speedup": 1.2, "efficiency": 0.6, "exit_parallel": [0],
                       "serial_sessions_s": 33.0, "parallel_sessions_s": 20.0, "sessions_speedup": 1.65})
    assert "start-up excluded): 1 process 33 s, 2 workers 20 s -> 1.65x = 0.82 N" in sessions
    raw = {"devices": 2, "ceiling": 1.5}
    line = render({**base, "parallel_s": 70.0, "speedup": 1.2, "efficiency": 0.6, "exit_parallel": [0],
                   "raw": raw, "of_ceiling": 0.8})
    assert "against one alone): 1.50x; the harness's speed-up is 0.80 of it" in line


def test_raw_parallel_ceiling_on_the_sim():
    from vfio_conform.bench import rawpar
    res = rawpar.measure("sim-p2p", ["sim0", "sim1"])
    assert res["devices"] == 2 and res["alone_s"] > 0 and len(res["together_s"]) == 2
    assert 0 < res["ceiling"] <= 2.5


def test_allure_cost_line_and_its_ratio_in_the_diff():
    """The suite section's Allure line (CPU with Allure output on against off), and `--diff` reads
    its ratio like the others."""
    from vfio_conform.bench.suite import ALLURE_CPU_TARGET, render_allure_cost
    line = render_allure_cost({"cpu_on_s": 6.3, "cpu_off_s": 6.0, "ratio": 1.05, "target": 1 + ALLURE_CPU_TARGET,
                               "ok": True})
    assert line == ("Allure output: 1.050x the suite's CPU time without it (6.30 s against 6.00 s; "
                    "within the 1.05x target)")
    busy = render_allure_cost({"cpu_on_s": 7.0, "cpu_off_s": 6.0, "ratio": 1.167, "target": 1.05, "ok": False,
                               "file_creation_us": 412.4})
    assert busy.startswith("Allure output: 1.167x") and "OVER" in busy
    assert "creating each of its result files took 412 us (the file system is busy" in busy
    assert "busy" not in render_allure_cost({"cpu_on_s": 6.1, "cpu_off_s": 6.0, "ratio": 1.017, "target": 1.05,
                                             "ok": True, "file_creation_us": 24.0})
    rows = compare({"suite": {"allure_cpu_ratio": 1.03}}, {"suite": {"allure_cpu_ratio": 1.40}})
    assert rows == [("suite.allure_cpu_ratio", 1.03, 1.40, True)]


def test_the_allure_stats_option_says_what_creating_the_result_files_took(tmp_path):
    """`--vc-allure-stats FILE`: the number of result files the run's process created and the
    seconds their creation took (what the bench's Allure line reports)."""
    stats = tmp_path / "stats.json"
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "vfio_conform", "run", "--profile", "sim-stop-copy", "--no-store",
                           "--reports", str(tmp_path / "r"), "-q", "--", "-k", "test_arc and RUNNING",
                           "--vc-allure-stats", str(stats)], cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:]
    made = json.loads(stats.read_text())
    results = list((tmp_path / "r").glob("runs/*/allure-results/*-result.json"))
    assert made["results"] == len(results) > 0 and 0 < made["create_seconds"] < 60


def test_big_state_sections_compute_their_ratios(monkeypatch):
    """hostile and run-memory: the ratios and differences against the baselines of the same runs,
    and their verdicts, from the runs' timings (a stand-in for `vfio-conform run` here)."""
    from vfio_conform.bench import bigruns

    def fake_run(profile, *args, timeout=3600):
        big = "1gib" in profile.stem
        tests = {"depth/test_roundtrip.py::test_round_trip_verified[x]": [1.0, 0.8],
                 "depth/test_roundtrip.py::test_same_stream_into_two_devices[x]": [2.0, 1.5],
                 "depth/test_hostile.py::test_extra_bytes[x-1]": [0.9 if big else 0.1, 0.7 if big else 0.1],
                 "depth/test_hostile.py::test_mutated_streams[x]": [0.5, 0.4]}
        return {"seconds": 9.0, "exit": 0, "verdict": "CONFORMANT-SUBSET", "counts": {},
                "peak_rss_mib": 120.0 if big else 70.0, "stream_bytes": 1, "tests": tests,
                "imported_by": {"hypothesis": "depth/test_hostile.py::test_mutated_streams[x]"}}
    monkeypatch.setattr(bigruns, "run", fake_run)
    res = bigruns.hostile(1 << 30, repeats=1)
    assert res["tests"] == 2 and res["cpu"] == {"hostile_s": 1.1, "save_resume_s": 0.8, "ratio": 1.38,
                                                "small_state_s": 0.5, "growing_ratio": 0.75}
    line = bigruns.render_hostile(res)
    assert res["ok"] and "1.38x" in line and "within the 2x target" in line
    assert "Hypothesis's import counted in test_mutated_streams[x]" in line
    mem = bigruns.run_memory([1 << 30])
    assert [r["state_size"] for r in mem["runs"]] == [1 << 20, 1 << 30]
    assert mem["runs"][1]["rss_over_baseline_mib"] == 50.0 and mem["runs"][1]["rss_ratio"] == 1.71
    assert mem["ok"] and "+50.0 MiB / 1.71x the 1 MiB run (within" in bigruns.render_memory(mem)


def test_run_records_each_tests_seconds_and_the_peak_rss(tmp_path):
    """One real `vfio-conform run` as the big-state sections make it: tests' wall and CPU seconds
    (phasetimes plugin), verdict and peak RSS from the JSON summary."""
    from vfio_conform.bench import bigruns
    profile = bigruns.generated_profile(2 << 20, tmp_path)
    res = bigruns.run(profile, "-k", "test_zero_length_stream or test_extra_bytes or test_mutated_streams",
                      timeout=300)
    assert res["exit"] == 0 and res["verdict"] == "CONFORMANT-SUBSET", res
    assert len(res["tests"]) == 5 and all(wall > 0 and cpu > 0 for wall, cpu in res["tests"].values())
    assert list(res["imported_by"]) == ["hypothesis"]       # by the one test that uses it
    assert "test_mutated_streams" in res["imported_by"]["hypothesis"]
    assert res["peak_rss_mib"] > 0


FAKE_VALGRIND = '''"""Stands in for valgrind: runs nothing, writes a cachegrind file whose count says which run it was."""
import sys
args = sys.argv[1:]
out = next(a.split("=", 1)[1] for a in args if a.startswith("--cachegrind-out-file="))
cmd = args[args.index("--") + 1:]
assert "--tool=cachegrind" in args and "--cache-sim=no" in args and "run" in cmd, args
if "--no-allure" in cmd:
    count = 1000000
elif __import__("os").environ.get("FAKE_VALGRIND_FAIL"):
    sys.exit("==1== fake valgrind: cannot run")
else:
    count = 1028000
with open(out, "w") as f:
    f.write("desc: --cache-sim=no\\ncmd: " + " ".join(cmd) + "\\nevents: Ir\\nfl=x\\nfn=y\\n1 5\\nsummary: %d\\n" % count)
'''


def test_allure_instructions_are_counted_with_valgrind_both_runs_at_once(tmp_path, monkeypatch):
    """The suite section's instruction line: both runs counted under cachegrind (a stand-in here),
    with a fixed hash seed, the ratio on / off; not counted, with the reason, without valgrind or
    when it writes no count; `--diff` reads the ratio."""
    from vfio_conform.bench import suite
    fake = tmp_path / "bin" / "valgrind"
    fake.parent.mkdir()
    fake.write_text(f"#!{sys.executable}\n{FAKE_VALGRIND}")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    monkeypatch.chdir(tmp_path)
    res = suite.allure_instructions()
    assert not list((tmp_path / "reports" / "bench").iterdir())     # its runs' reports removed
    assert res == {"on": 1028000, "off": 1000000, "ratio": 1.028}
    assert suite.render_allure_instructions(res) == (
        "Allure output in instructions (valgrind; user space, the same at every run): 1.028x "
        "(0.00 G against 0.00 G)")
    monkeypatch.setenv("FAKE_VALGRIND_FAIL", "1")
    failed = suite.allure_instructions()
    assert "without a count" in failed["skipped"] and "cannot run" in failed["skipped"], failed
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    assert suite.allure_instructions() == {"skipped": "valgrind is not installed"}
    assert suite.render_allure_instructions({"skipped": "valgrind is not installed"}) == \
        "Allure output in instructions: not counted (valgrind is not installed)"
    rows = compare({"suite": {"allure_instruction_ratio": 1.03}}, {"suite": {"allure_instruction_ratio": 1.3}})
    assert rows == [("suite.allure_instruction_ratio", 1.03, 1.3, True)]
