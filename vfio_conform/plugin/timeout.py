"""Per-test time limit (profile `timeouts.test`) on the test's own setup, call and teardown.

Why not pytest-timeout: with func_only it bounds only the call (a hang while a fixture opens or
resets the device is not bounded); without it the alarm spans the whole runtest protocol,
pytest's reporting included, so it can fire inside pytest's own code (an INTERNALERROR that ends
the session). Its thread method ends the whole process. Here the alarm is armed inside each
phase's hook, which pytest runs within its exception capture, and disarmed before the phase is
reported. The exception is a BaseException so device code that handles OSError (a timeout is an
OSError) cannot turn it into an errno, and a spec `fail`. A device whose operation never returned
(the timeout interrupted it) is retired for the rest of the run, the message naming that operation;
the profile's other devices are reset and checked, and one that does not come back to RUNNING is
retired too. Other profiles' devices carry on.
"""
from __future__ import annotations

import contextlib
import signal
import threading
import time

import pytest

from ..device import LAST_OPERATION, last_operation
from ..device.lastop import INTERRUPTED
from ..uapi.enums import MigState
from ..targets.items import item_param


class TestTimeout(BaseException):
    """A test phase exceeded the profile's timeouts.test (recorded as an infra-error)."""

    __test__ = False


def usable() -> bool:
    """SIGALRM exists and this is the main thread (signals are delivered there only)."""
    return hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()


class TestTimer:
    """pytest plugin: one deadline per test; setup and call share it, teardown gets at least
    timeouts.io to return the device to a safe state."""

    __test__ = False

    def __init__(self):
        self.deadline = 0.0
        self.fired: dict[str, str] = {}     # nodeid -> phase that timed out
        #: nodeid -> (device name, operation) of a device operation the timeout interrupted
        self.hung: dict[str, tuple[str, str]] = {}
        #: (item, phase, limit, limit's name) of the phase the alarm is armed for (None: disarmed)
        self.armed: tuple | None = None
        #: time.monotonic() when the armed alarm fires (the watchdog thread reads it)
        self.armed_until = 0.0
        self.installed = False
        self.previous = None             # the SIGALRM handler before the session's

    def _on_alarm(self, signum, frame):
        if self.armed is None:           # disarmed between phases: nothing to interrupt
            return
        item, phase, limit, name = self.armed
        self.fired.setdefault(item.nodeid, phase)
        if LAST_OPERATION.in_progress:
            self.hung.setdefault(item.nodeid, (LAST_OPERATION.device, last_operation()))
            LAST_OPERATION.returned(INTERRUPTED)
            raise TestTimeout(f"test exceeded {name} = {limit:g}s in {phase}; device operation "
                              f"that never returned: {last_operation()}")
        raise TestTimeout(f"test exceeded {name} = {limit:g}s in {phase}; "
                          f"last device operation: {last_operation()}")

    @contextlib.contextmanager
    def _alarm(self, item, phase: str, seconds: float, limit: float, name: str = "timeouts.test"):
        if not self.installed:           # one handler for the session: a phase only arms the timer
            self.previous = signal.signal(signal.SIGALRM, self._on_alarm)
            self.installed = True
        outer, self.armed = self.armed, (item, phase, limit, name)
        outer_until, self.armed_until = self.armed_until, time.monotonic() + max(seconds, 0.001)
        signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            self.armed, self.armed_until = outer, outer_until

    def pytest_unconfigure(self, config) -> None:
        """Give SIGALRM back to whoever had it before the session."""
        if self.installed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous if self.previous is not None else signal.SIG_DFL)
            self.installed = False

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item):
        profile = item_param(item, "profile")
        if profile is None:
            return (yield)
        self.deadline = time.monotonic() + profile.timeouts.test
        try:
            with self._alarm(item, "setup", profile.timeouts.test, profile.timeouts.test):
                return (yield)
        finally:
            self._retire_hung(item)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item):
        profile = item_param(item, "profile")
        if profile is None:
            return (yield)
        try:
            with self._alarm(item, "call", self.deadline - time.monotonic(), profile.timeouts.test):
                return (yield)
        finally:
            self._retire_hung(item)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(self, item, nextitem):
        profile = item_param(item, "profile")
        if profile is None:
            return (yield)
        budget = max(self.deadline - time.monotonic(), profile.timeouts.io)
        try:
            with self._alarm(item, "teardown", budget, budget,
                             "the teardown budget (what is left of timeouts.test, at least timeouts.io)"):
                return (yield)
        finally:
            self._retire_hung(item)
            if item.nodeid in self.fired:
                self._recover(item, profile)

    def _retire_hung(self, item) -> None:
        """Retire the device whose operation a timeout interrupted, before anything else touches it."""
        hung = self.hung.get(item.nodeid)
        pool = (item.funcargs or {}).get("device_pool")
        profile = item_param(item, "profile")
        if hung is None or pool is None or profile is None:
            return
        for key, device in list(pool.devices.items()):
            if key[0] == profile.name and device.name == hung[0] and key not in pool.broken:
                self._retire(pool, key, device, f"device {device.name} retired: {hung[1]} never "
                             f"returned (timeout in {item.name}, {self.fired[item.nodeid]})")

    def _recover(self, item, profile) -> None:
        """Reset the profile's open devices; retire any that do not come back to RUNNING."""
        pool = (item.funcargs or {}).get("device_pool")
        if pool is None:
            return
        for key, device in list(pool.devices.items()):
            if key[0] != profile.name or key in pool.broken:
                continue
            how = "reset timed out"
            try:
                with self._alarm(item, "recovery", profile.timeouts.io, profile.timeouts.io,
                                 "timeouts.io"):
                    how = device.to_safe_state()
                    code, state, _ = device.get_state_raw()
                ok = not code and state == MigState.RUNNING
            except (TestTimeout, Exception) as exc:   # noqa: B014 - a timeout is a BaseException
                ok, how = False, f"{how}: {type(exc).__name__}: {exc}"
            if not ok:
                self._retire(pool, key, device, f"device {device.name} retired after a timeout in "
                             f"{item.name} ({self.fired[item.nodeid]}); recovery: {how}")

    @staticmethod
    def _retire(pool, key, device, reason: str) -> None:
        """No more operations on `device` in this run: its later tests are infra-errors (reason)."""
        pool.broken[key] = reason
        pool.devices.pop(key, None)
        try:
            device.close(safe=False)    # no more operations on a wedged device
        except Exception:   # noqa: BLE001 - closing is best effort; it is retired anyway
            pass
