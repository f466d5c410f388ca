"""The lab's guest command: the run writes its reports to the guest's tmpfs, mirrors its store to the
9p share as it goes, and copies the rest home at the end (no boot here)."""
import json
import sys

from vfio_conform.base.constants import STORE_NAME
from vfio_conform.qemu_lab.harness import GUEST_LOCAL_REPORTS, REPORTS_TAR, guest_argv
from vfio_conform.qemu_lab.channels import JOURNAL, PROGRESS
from vfio_conform.qemu_lab.session import GUEST_RESULTS
from vfio_conform.profile import find_profile


class _Session:
    def module_devices(self, module):
        return [f"{module}-a", f"{module}-b"]


def _spec(workers):
    profiles = [find_profile(n) for n in ("mtty", "mtty-sc", "mtty-p2p")]
    argv = guest_argv(_Session(), profiles, workers, ["-k", "arc"])
    assert argv[:3] == ["python3", "-m", "vfio_conform.qemu_lab.guest_run"]
    return json.loads(argv[3])


def test_reports_are_local_and_the_store_is_mirrored_to_the_share():
    for workers in (None, "1"):
        (run,) = _spec(workers)["commands"]
        text = " ".join(run)
        assert f"--reports {GUEST_LOCAL_REPORTS}" in text
        assert f"--store-mirror {GUEST_RESULTS}/reports/{STORE_NAME}" in text
        # per-test lines go through virtio-serial ports (relayed FIFOs), the status file to the share
        assert f"--store-journal {JOURNAL.guest_path()}" in text
        assert f"--progress-file {PROGRESS.guest_path()}" in text
        assert f"--status-file {GUEST_RESULTS}/progress.json" in text
        assert "--no-summary" in run and "-n" not in run     # the host writes the table and report
        assert run[-3:] == ["--", "-k", "arc"]


def test_workers_are_processes_each_on_its_own_profiles():
    spec = _spec("2")
    assert spec["pack"] == ["tar", "-b", "1024", "-C", GUEST_LOCAL_REPORTS, "-cf", f"{GUEST_RESULTS}/{REPORTS_TAR}",
                            "--exclude", "./results*.sqlite*", "."]
    first, second = spec["commands"]
    assert [[p for i, p in enumerate(c) if c[i - 1] == "--profile"] for c in (first, second)] == [
        [str(find_profile("mtty").path), str(find_profile("mtty-p2p").path)],
        [str(find_profile("mtty-sc").path)]]
    assert "mtty-sc=mtty_sc-a" in second and "mtty=mtty-a" in first
    assert f"{GUEST_RESULTS}/progress-0.json" in first and f"{GUEST_RESULTS}/progress-1.json" in second
    # a store per process (one SQLite file shared by two runs makes each wait for the other's writes)
    for i, cmd in enumerate((first, second)):
        assert cmd[cmd.index("--store") + 1] == f"{GUEST_LOCAL_REPORTS}/results-{i}.sqlite"
        assert cmd[cmd.index("--store-mirror") + 1] == f"{GUEST_RESULTS}/reports/results-{i}.sqlite"
    assert all("-n" not in cmd for cmd in (first, second))
    assert len(_spec("5")["commands"]) == 3           # never more processes than profiles


def test_each_guest_store_gets_its_own_journal_lines(tmp_path):
    """Two guest processes, two stores, one journal: each copy is completed with its own lines and
    both are imported."""
    from vfio_conform.qemu_lab.harness import LabRun, _bring_home
    from vfio_conform.results import Outcome, ResultStore, RunMeta, TestRecord
    from vfio_conform.results.journal import Journal
    run_dir = tmp_path / "lab-run"
    (run_dir / "reports").mkdir(parents=True)
    journal = Journal(run_dir / JOURNAL.host_file)
    for i, profile in enumerate(("mtty", "mtty-sc")):
        name = f"results-{i}.sqlite"
        copy = ResultStore(run_dir / "reports" / name)          # the copy taken when the run began
        run_id = copy.begin_run(RunMeta(profile=profile, backend="kernel", devices="a,b", driver="mtty",
                                        kernel="k", harness_version="0", host="guest", session=f"s{i}"))
        copy.close()
        writer = Journal.__new__(Journal)
        writer.path, writer.source, writer.fd = journal.path, name, journal.fd
        for n in range(2 + i):
            writer.append(run_id, TestRecord(nodeid=f"{profile}-t{n}", test_id=f"t{n}[{profile}]",
                                             outcome=Outcome.PASS, duration=0.1, profile=profile))
    journal.close()
    reports = tmp_path / "host"
    run = LabRun("mdev", ["mtty", "mtty-sc"], None, run_dir, "kernel panic")
    _bring_home(run, reports, None)
    host = ResultStore(reports / STORE_NAME, readonly=True)
    got = {host.run(r)["profile"]: [x["test_id"] for x in host.results(r)] for r in run.run_ids}
    host.close()
    assert got["mtty"][:2] == ["t0[mtty]", "t1[mtty]"]
    assert got["mtty-sc"][:3] == ["t0[mtty-sc]", "t1[mtty-sc]", "t2[mtty-sc]"]
    # then the infra-error of the dead guest, once per run
    assert [len(got["mtty"]), len(got["mtty-sc"])] == [3, 4]
    assert all(rows[-1].startswith("lab-guest-died:") for rows in got.values())


def test_packed_reports_are_unpacked_and_imported(tmp_path):
    """The guest's tar (JUnit, Allure) lands under the host's reports; the mirrored store is imported."""
    import tarfile
    from vfio_conform.qemu_lab.harness import LabRun, _bring_home
    from vfio_conform.results import ResultStore
    local = tmp_path / "guest-local"
    (local / "runs" / "r1").mkdir(parents=True)
    (local / "runs" / "r1" / "junit.xml").write_text("<testsuites/>")
    (local / "allure-results").mkdir()
    (local / "allure-results" / "a-result.json").write_text("{}")
    run_dir = tmp_path / "lab-run"
    (run_dir / "reports").mkdir(parents=True)
    with tarfile.open(run_dir / REPORTS_TAR, "w") as pack:
        pack.add(local, arcname=".")
    ResultStore(run_dir / "reports" / STORE_NAME).close()      # the mirror (no runs: nothing to import)
    (run_dir / JOURNAL.host_file).write_text("")                # the port's file, empty
    reports = tmp_path / "host"
    _bring_home(LabRun("mdev", ["mtty"], 0, run_dir), reports, None)
    assert (reports / "runs" / "lab-r1" / "junit.xml").read_text() == "<testsuites/>"
    assert (reports / "runs" / "lab-lab-run" / "allure-results" / "a-result.json").exists()


def test_auto_workers_are_one_per_profile_up_to_the_guest_cpus():
    from vfio_conform.qemu_lab.harness import guest_workers
    assert guest_workers("auto", 4, 2) == "2"
    assert guest_workers("auto", 2, 4) == "2"
    assert guest_workers("auto", 1, 2) is None          # one profile: one process, no xdist start-up
    assert guest_workers("3", 1, 2) == "3" and guest_workers(None, 4, 2) is None


def test_the_journal_port_lands_where_the_host_replays_it():
    from vfio_conform.plugin.store_mirror import journal_path
    assert JOURNAL.host_file == str(journal_path(f"reports/{STORE_NAME}"))


def test_guest_run_combines_the_workers_and_packs(tmp_path, capsys):
    from vfio_conform.qemu_lab import guest_run
    py = sys.executable
    spec = {"commands": [[py, "-c", "print('first')"], [py, "-c", "print('second'); raise SystemExit(1)"]],
            "outputs": str(tmp_path / "out"),
            "pack": [py, "-c", f"open({str(tmp_path / 'packed')!r}, 'w').close()"]}
    assert guest_run.main([json.dumps(spec)]) == 1          # a violation in one worker: exit 1
    out = capsys.readouterr().out
    assert out.index("guest worker 0 (exit 0)") < out.index("first") < out.index("guest worker 1 (exit 1)") \
        < out.index("second")
    assert (tmp_path / "packed").exists()
    spec["commands"][1] = [py, "-c", "raise SystemExit(3)"]
    assert guest_run.main([json.dumps(spec)]) == 3          # an incomplete worker: the run is incomplete
