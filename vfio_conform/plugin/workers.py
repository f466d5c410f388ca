"""xdist worker processes seen from the controller: a worker that dies, the test lost with it, and a
bound on how long the controller waits for its workers.

- A worker killed by a signal (SIGKILL from the OOM killer, SIGSEGV from a crashing driver library)
  or exiting in the middle of a test: the test is recorded as `infra-error` naming the test, the
  worker and how its process ended. That record stays when a re-run plugin puts the test back in
  the queue (`pytest_handlecrashitem` sets the report's outcome to "rerun") and the re-run passes.
- A replacement worker that has not reported its collection yet is never given work (xdist's
  load-group scheduler would fail with a KeyError, an INTERNALERROR that ends the session).
- The profile's group travels with each test: xdist's load-group scheduler reads a test's group from
  an `@group` suffix its worker appends to the node id (`item._nodeid`). From pytest 9.2 a node id
  is a structured `NodeId` and that write is silently lost (pytest-xdist issue 1386): every test
  became its own group, a profile's tests ran on several workers at once and a crash re-queued
  single tests. `GroupSuffix` (workers) appends the suffix where xdist's write did not take.
- The stall watchdog: when no worker reported anything for `stall_s` seconds (a worker stuck where
  the per-test timeout cannot reach, or a scheduler that lost track of a replaced worker's work),
  the controller stops the run: it ends `incomplete (stalled)`, exit 3, instead of waiting forever.
"""
from __future__ import annotations

import _thread
import signal
import threading
import time

import pytest

from ..results import Outcome, TestRecord
from ..results.keys import strip_profile
from .selection import profile_of, strip_group

#: Seconds to wait for a dead worker's process to be reaped, to read how it ended.
REAP_WAIT_S = 2.0
#: Seconds without any worker event after which a run is stalled, beyond the longest test bound.
STALL_MARGIN_S = 120.0


def exit_text(returncode: int | None) -> str:
    """How a worker process ended, in words: 'killed by SIGKILL', 'exited with status 70'."""
    if returncode is None:
        return "ended (exit status unknown)"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with status {returncode}"


def _returncode(node) -> int | None:
    """The worker's exit status, if it ran as a local process (waits at most REAP_WAIT_S)."""
    popen = getattr(getattr(getattr(node, "gateway", None), "_io", None), "popen", None)
    if popen is None:
        return None
    try:
        return popen.wait(timeout=REAP_WAIT_S)
    except Exception:               # still running, or not ours to wait for
        return None


def stall_limit(ctx) -> float:
    """The default stall bound: the longest per-test bound of the run's profiles plus a margin."""
    longest = max((t.profile.timeouts.test + t.profile.timeouts.io for t in ctx.targets.values()),
                  default=0.0)
    return longest + STALL_MARGIN_S


def group_suffix(item) -> str | None:
    """The `@group` suffix xdist's load-group scheduler expects for an item (None: no group)."""
    names = set()
    for mark in item.iter_markers("xdist_group"):
        names.add(str(mark.args[0] if mark.args else mark.kwargs.get("name", "default")))
    return "@" + "_".join(sorted(names)) if names else None


def set_nodeid(item, nodeid: str) -> None:
    """Rename an item: pytest >= 9.2 keeps a structured NodeId in `_id`, older ones a `_nodeid`."""
    current = getattr(item, "_id", None)
    parse = getattr(type(current), "parse", None)
    if current is not None and callable(parse):
        item._id = parse(nodeid)
    else:
        item._nodeid = nodeid
    if item.nodeid != nodeid:
        raise RuntimeError(f"vfio-conform: cannot set the xdist group of {nodeid}: this pytest keeps "
                           "node ids in a way the harness does not know")


class GroupSuffix:
    """pytest plugin (xdist workers): every grouped test's node id ends in its `@group`, so the
    load-group scheduler keeps a profile's tests on one worker (a device is exclusive)."""

    @pytest.hookimpl(trylast=True)          # after xdist's worker appended it (if it still can)
    def pytest_collection_modifyitems(self, config, items) -> None:
        if not config.getvalue("loadgroup"):
            return
        for item in items:
            suffix = group_suffix(item)
            if suffix is not None and not item.nodeid.endswith(suffix):
                set_nodeid(item, item.nodeid + suffix)


class WorkerWatch:
    """pytest plugin (controller, only under xdist): records tests lost with their workers, keeps
    the scheduler from handing work to a worker that has no collection, bounds the wait."""

    def __init__(self, ctx, recorder, lifecycle, stall_s: float) -> None:
        self.ctx, self.recorder, self.lifecycle = ctx, recorder, lifecycle
        self.stall_s = stall_s
        self.ended: dict[str, str] = {}      # worker id -> how its process ended
        self.last_event = time.monotonic()
        self.stalled = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- a dead worker and its test ----------------------------------------------------------
    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        self._tick()
        if error:
            self.ended[node.gateway.id] = exit_text(_returncode(node))

    @pytest.hookimpl(optionalhook=True, trylast=True)       # after a re-run plugin decided
    def pytest_handlecrashitem(self, crashitem, report, sched) -> None:
        worker = getattr(getattr(report, "node", None), "gateway", None)
        wid = getattr(worker, "id", "?")
        how = self.ended.get(wid, "ended (exit status unknown)")
        profile = profile_of(crashitem, self.ctx.targets)
        test_id = strip_group(crashitem).rpartition("::")[2]
        rerun = report.outcome == "rerun"
        message = (f"worker {wid} crashed ({how}) while running {test_id}: the test was lost with its worker "
                   "process (a crashing driver or library, the OOM killer)"
                   + ("; it was queued again and the re-run is recorded separately" if rerun else ""))
        report.longrepr = message
        report.vc_crash_recorded = True         # the recorder does not record this report again
        if profile is None:
            return
        rec = TestRecord(nodeid=crashitem, test_id=test_id, outcome=Outcome.INFRA_ERROR,
                         duration=float(getattr(report, "duration", 0.0) or 0.0), message=message,
                         profile=profile, test_key=strip_profile(test_id, profile),
                         devices=tuple(self.ctx.targets[profile].device_ids), finished=time.time())
        self.recorder.keep(rec)

    # -- a replacement worker without a collection --------------------------------------------
    @pytest.hookimpl(optionalhook=True, tryfirst=True)      # before xdist's own choice
    def pytest_xdist_make_scheduler(self, config, log):
        if config.getvalue("dist") != "loadgroup":
            return None
        from xdist.scheduler import LoadGroupScheduling

        class CollectedOnly(LoadGroupScheduling):
            """xdist's load-group scheduler, safe when a worker dies (see _reschedule, _purge)."""

            def _reschedule(self, node) -> None:
                # A replacement that has not reported its collection cannot be given work (xdist
                # would raise KeyError inside remove_node, which swallows it: the dead worker's
                # test goes unreported and the other workers are never given the requeued work).
                if node in self.registered_collections:
                    super()._reschedule(node)

            def _purge(self) -> None:
                # A dead worker's whole workload goes back in the queue, finished groups too: a
                # group with nothing left to run would be handed out as an empty batch (the worker
                # then never reports again) and keeps the run from ever being finished.
                for scope in [s for s, unit in self.workqueue.items() if all(unit.values())]:
                    del self.workqueue[scope]

            def _assign_work_unit(self, node) -> None:
                self._purge()
                if self.workqueue:
                    super()._assign_work_unit(node)
                else:
                    node.shutdown()

            def remove_node(self, node):
                crashed = super().remove_node(node)
                self._purge()
                for other in list(self.assigned_work):
                    self._reschedule(other)     # an emptied queue: workers run their last test
                return crashed

            @property
            def tests_finished(self) -> bool:
                self._purge()
                return super().tests_finished

        return CollectedOnly(config, log)

    # -- the stall watchdog ------------------------------------------------------------------
    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodeready(self, node) -> None:
        self._tick()

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids) -> None:
        self._tick()

    def pytest_runtest_logstart(self, nodeid, location) -> None:
        self._tick()

    def pytest_runtest_logreport(self, report) -> None:
        self._tick()

    @pytest.hookimpl(tryfirst=True)         # xdist's loop returns only when the run is over
    def pytest_runtestloop(self, session) -> None:
        """Start the watchdog as the controller starts waiting for its workers (xdist only)."""
        if (self.stall_s > 0 and self._thread is None
                and session.config.pluginmanager.has_plugin("dsession")):
            self._tick()
            self._thread = threading.Thread(target=self._watch, name="vc-stall-watchdog", daemon=True)
            self._thread.start()

    def pytest_sessionfinish(self, session) -> None:
        self._stop.set()

    def _tick(self) -> None:
        self.last_event = time.monotonic()

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            if time.monotonic() - self.last_event >= self.stall_s:
                self.stalled.set()
                self.lifecycle.stalled(self.stall_s)
                _thread.interrupt_main()        # the controller's wait ends as a Ctrl-C would
                return
