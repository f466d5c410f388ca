"""Test-only pytest plugin: an xdist worker process is killed by a signal in a chosen test, as a
segfaulting driver library (SIGSEGV) or the OOM killer (SIGKILL) would end it (loaded with -p vc_worker_kill).

VC_KILL_TEST: substring of the test's node id whose call phase kills its worker.
VC_KILL_SIGNAL: the signal's name (default KILL).
VC_KILL_ONCE: a file path; the test kills its worker only while that file does not exist (it is
created just before the kill), so a re-run of the test passes.
VC_STALL_TEST: substring of the node id whose call phase wedges its worker where no per-test
timeout reaches it (SIGALRM blocked, then a long sleep), as an uninterruptible ioctl would.
VC_RERUN_CRASHED=1: the controller puts a crashed test back in the queue once, as a re-run plugin
(pytest-rerunfailures) does; needs a scheduler that can (`--dist load`).
"""
import os
import signal
import time

import pytest


def pytest_runtest_call(item):
    stall = os.environ.get("VC_STALL_TEST")
    if stall and hasattr(item.config, "workerinput") and stall in item.nodeid:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(3600)
    target = os.environ.get("VC_KILL_TEST")
    if not target or not hasattr(item.config, "workerinput") or target not in item.nodeid:
        return
    once = os.environ.get("VC_KILL_ONCE")
    if once:
        if os.path.exists(once):
            return
        open(once, "w").close()
    os.kill(os.getpid(), getattr(signal, "SIG" + os.environ.get("VC_KILL_SIGNAL", "KILL")))


_rerun: set = set()


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_handlecrashitem(crashitem, report, sched):
    if os.environ.get("VC_RERUN_CRASHED") == "1" and crashitem not in _rerun:
        _rerun.add(crashitem)
        sched.mark_test_pending(crashitem)
        report.outcome = "rerun"
