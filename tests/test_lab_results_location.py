"""The lab's guest command: one process writes its results straight to the 9p share; several workers
write to the guest's tmpfs and the command copies them to the share at the end (no boot here)."""
from vfio_conform.lab.harness import GUEST_LOCAL_REPORTS, guest_argv
from vfio_conform.lab.session import GUEST_RESULTS
from vfio_conform.profile import find_profile


class _Session:
    def module_devices(self, module):
        return [f"{module}-a", f"{module}-b"]


def _script(workers):
    argv = guest_argv(_Session(), [find_profile("mtty"), find_profile("mtty-sc")], workers, [])
    assert argv[:2] == ["sh", "-c"]
    return argv[2]


def test_one_process_writes_results_to_the_share():
    for workers in (None, "1"):
        script = _script(workers)
        assert f"--reports {GUEST_RESULTS}/reports" in script and GUEST_LOCAL_REPORTS not in script


def test_several_workers_write_locally_and_copy_home():
    script = _script("2")
    assert f"--reports {GUEST_LOCAL_REPORTS}" in script and "-n 2" in script
    assert f"--progress-file {GUEST_RESULTS}/progress" in script       # the host still sees progress
    run, _, after = script.partition("; rc=$?; ")
    assert f"cp -r {GUEST_LOCAL_REPORTS}/. {GUEST_RESULTS}/reports/" in after and after.endswith("exit $rc")
