"""Fixtures: a session pool of opened devices per profile, and per-test devices in RUNNING.

Between tests the pool returns each device to RUNNING with no session (reset, or SET RUNNING). A
device that does not get there broke a rule (reset must return RUNNING, a legal SET must work): that
is recorded as a failure of the test where it showed (SpecViolation, naming the rule), and the pool
tries the other ways back (walk the FSM to RUNNING, close and reopen the device). Only when every way
fails is the device retired: its remaining tests are skipped as infra-error with the reason.
"""
from __future__ import annotations

import pytest

from ..backends.registry import open_device, role_of
from ..device import Device
from ..errors import SpecViolation, errno_name
from ..model.plan import plan
from ..uapi.enums import MigState
from .context import CONTEXT_KEY
from ..outcomes import infra_error, not_supported


class DevicePool:
    """Opens each (profile, device id) once per session; a device that cannot be made safe is retired."""

    def __init__(self, ctx, hook=None):
        self.ctx = ctx
        #: pytest's hook caller: vendor plugins' pytest_vc_device_opened / pytest_vc_device_closing (hookspecs.py).
        self.hook = hook
        self.devices: dict[tuple[str, int], Device] = {}
        self.broken: dict[tuple[str, int], str] = {}

    def get(self, profile, index: int) -> Device:
        key = (profile.name, index)
        if key in self.broken:
            infra_error(f"{self.broken[key]}")
        ids = self.ctx.targets[profile.name].device_ids
        if index >= len(ids):
            not_supported(f"test needs {index + 1} devices; profile "
                        f"{profile.name} has {len(ids)} (pass --device twice)")
        if key not in self.devices:
            self.devices[key] = open_device(profile, ids[index], role_of(index))
            if self.hook is not None:
                self.hook.pytest_vc_device_opened(device=self.devices[key], profile=profile, role=role_of(index))
        return self.devices[key]

    def _closing(self, key: tuple[str, int], device: Device) -> None:
        if self.hook is not None:
            self.hook.pytest_vc_device_closing(device=device, profile=self.ctx.targets[key[0]].profile,
                                        role=role_of(key[1]))

    def make_running(self, profile, index: int) -> Device:
        """A device in RUNNING with no session, or the rule it broke on the way back (raised)."""
        finding = self.recover(profile, index)
        if finding is not None:
            raise finding
        return self.devices[(profile.name, index)]

    def recover(self, profile, index: int) -> SpecViolation | None:
        """Return the device to RUNNING; the rule it broke on the way (None if it behaved).

        Tries reset (or SET RUNNING), then walking the FSM back, then close and reopen; when all
        fail the device is retired (later tests: infra-error) and the finding says so.
        """
        key = (profile.name, index)
        device = self.get(profile, index)
        how = device.to_safe_state()
        code, state, _ = device.get_state_raw()
        if code == 0 and state == MigState.RUNNING:
            return None
        rule, what = _finding(how, code, state)
        tried = []
        for name, way in (("walking the FSM back to RUNNING", self._walk_back),
                          ("closing and reopening the device", self._reopen)):
            why_not = way(profile, index)
            if why_not is None:
                return SpecViolation(rule, f"{what}; recovered by {name}", device.name)
            tried.append(f"{name}: {why_not}")
        self.broken[key] = (f"device {device.name} could not be returned to RUNNING ({what}; "
                            f"{'; '.join(tried)}): device retired, remaining tests not run")
        return SpecViolation(rule, self.broken[key], device.name)

    def _walk_back(self, profile, index: int) -> str | None:
        """SET each step of the model's path from the current state to RUNNING; None when there."""
        device = self.devices[(profile.name, index)]
        code, state, _ = device.get_state_raw()
        if code:
            return f"GET failed with {errno_name(code)}"
        if state == MigState.ERROR or state >= len(MigState):
            return f"no SET is safe from {MigState.label(state)} (only a reset leaves ERROR)"
        route = plan(MigState(state), MigState.RUNNING, profile.flags)
        if route.hazard is not None or route.errno:
            return f"no safe path from {MigState.label(state)} to RUNNING"
        for step in route.path:
            result = device.try_set_state(step)
            if result.data_fd is not None:
                result.data_fd.close()
            if result.errno:
                return f"SET {step.name} failed with {errno_name(result.errno)}"
        return _not_running(device)

    def _reopen(self, profile, index: int) -> str | None:
        """Close the device fd and open it again, then reset / SET RUNNING; None when in RUNNING."""
        key = (profile.name, index)
        device = self.devices[key]
        code, state, _ = device.get_state_raw()
        if code == 0 and state == MigState.RESUMING:     # mtty oopses on STOP after a reopen in RESUMING
            return "not tried: closing a device in RESUMING is unsafe on some drivers"
        self._closing(key, device)
        device.close(safe=False)
        del self.devices[key]
        try:
            device = self.get(profile, index)
        except OSError as exc:
            return f"reopen failed: {exc}"
        device.to_safe_state()
        return _not_running(device)

    def close(self) -> None:
        for key, device in self.devices.items():
            self._closing(key, device)
            device.close(safe=True)
        self.devices.clear()


def _finding(how: str, code: int, state: int) -> tuple[str, str]:
    """The rule a device broke when reset / SET RUNNING did not bring it to RUNNING, and what it did."""
    seen = f"GET reports {MigState.label(state)}" if code == 0 else f"GET fails with {errno_name(code)}"
    if how == "reset":
        return "reset.returns-running", f"VFIO_DEVICE_RESET succeeded but {seen}"
    if how == "running":
        return "fsm.state-after-set", f"SET RUNNING succeeded but {seen}"
    return "fsm.legal-arc", f"no reset and SET RUNNING failed: {how}; {seen}"


def _not_running(device: Device) -> str | None:
    code, state, _ = device.get_state_raw()
    if code == 0 and state == MigState.RUNNING:
        return None
    return f"then GET reports {MigState.label(state)} ({errno_name(code)})"


@pytest.fixture(scope="session")
def vc_context(request):
    ctx = request.config.stash.get(CONTEXT_KEY, None)
    if ctx is None:
        pytest.skip("no --vc-profile given")
    return ctx


@pytest.fixture(scope="session")
def device_pool(vc_context, request):
    pool = DevicePool(vc_context, request.config.hook)
    yield pool
    pool.close()


def _restore(pool: DevicePool, profile, index: int) -> None:
    """Teardown: back to RUNNING; a rule the device broke on the way fails the test that left it."""
    if (profile.name, index) in pool.broken or (profile.name, index) not in pool.devices:
        return
    finding = pool.recover(profile, index)
    if finding is not None:
        raise finding


@pytest.fixture
def device(device_pool, profile) -> Device:
    """The profile's first device, in RUNNING with no session; returned to RUNNING afterwards."""
    dev = device_pool.make_running(profile, 0)
    yield dev
    _restore(device_pool, profile, 0)


@pytest.fixture
def peer_device(device_pool, profile) -> Device:
    """The profile's second device (migration destination), in RUNNING."""
    dev = device_pool.make_running(profile, 1)
    yield dev
    _restore(device_pool, profile, 1)
