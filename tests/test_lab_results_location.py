"""The lab's guest command: the run writes its reports to the guest's tmpfs, mirrors its store to the
9p share as it goes, and copies the rest home at the end (no boot here)."""
from vfio_conform.constants import STORE_NAME
from vfio_conform.lab.harness import GUEST_LOCAL_REPORTS, REPORTS_TAR, guest_argv
from vfio_conform.lab.channels import JOURNAL, PROGRESS
from vfio_conform.lab.session import GUEST_RESULTS
from vfio_conform.profile import find_profile


class _Session:
    def module_devices(self, module):
        return [f"{module}-a", f"{module}-b"]


def _script(workers):
    argv = guest_argv(_Session(), [find_profile("mtty"), find_profile("mtty-sc")], workers, [])
    assert argv[:2] == ["sh", "-c"]
    return argv[2]


def test_reports_are_local_and_the_store_is_mirrored_to_the_share():
    for workers in (None, "1", "2"):
        script = _script(workers)
        run, _, after = script.partition("; rc=$?; ")
        assert f"--reports {GUEST_LOCAL_REPORTS}" in run
        assert f"--store-mirror {GUEST_RESULTS}/reports/{STORE_NAME}" in run
        # per-test lines go through virtio-serial ports (relayed FIFOs), the status file to the share
        assert f"--store-journal {JOURNAL.guest_path()}" in run
        assert f"--progress-file {PROGRESS.guest_path()}" in run
        assert f"--status-file {GUEST_RESULTS}/progress.json" in run
        assert ("-n 2" in run) == (workers == "2")
        assert "--no-summary" in run            # the host writes the table and the HTML report
        assert after == (f"tar -C {GUEST_LOCAL_REPORTS} -cf {GUEST_RESULTS}/{REPORTS_TAR} "
                         f"--exclude './{STORE_NAME}*' .; exit $rc")


def test_packed_reports_are_unpacked_and_imported(tmp_path):
    """The guest's tar (JUnit, Allure) lands under the host's reports; the mirrored store is imported."""
    import tarfile
    from vfio_conform.lab.harness import LabRun, _bring_home
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
    from vfio_conform.lab.harness import guest_workers
    assert guest_workers("auto", 4, 2) == "2"
    assert guest_workers("auto", 2, 4) == "2"
    assert guest_workers("auto", 1, 2) is None          # one profile: one process, no xdist start-up
    assert guest_workers("3", 1, 2) == "3" and guest_workers(None, 4, 2) is None


def test_the_journal_port_lands_where_the_host_replays_it():
    from vfio_conform.plugin.store_mirror import journal_path
    assert JOURNAL.host_file == str(journal_path(f"reports/{STORE_NAME}"))
