"""A device that does not return to RUNNING between tests fails the rule it broke (not infra-error);
the pool walks it back or reopens it, and retires it only when every way fails. A `should` rule
not met is a recorded pass, never a failure."""
import types

import pytest

from suite_runner import run_suites, write_profile
from vfio_conform.device import SetResult
from vfio_conform.base.errors import SpecViolation
from vfio_conform.results.outcomes import skip_outcome
from vfio_conform.fixtures import devices as fixtures
from vfio_conform.results import Outcome
from vfio_conform.results.model import SHOULD_NOT_MET
from vfio_conform.targets.select import Target
from vfio_conform.report.outcomes import SHOULD_UNMET, shown
from vfio_conform.uapi.enums import MigState


def test_reset_that_keeps_the_state_fails_its_rule_and_the_run_goes_on(tmp_path):
    profile = write_profile(tmp_path, "sim-p2p-precopy", "recover-reset-keeps-state",
                            faults=[{"name": "reset_keeps_state"}])
    code, rows, out = run_suites(profile, tmp_path, "-k", "test_arc", areas=("fsm",))
    assert code != 0 and rows, out[-2000:]
    assert not [r for r in rows if r["outcome"] == "infra-error"], out[-2000:]
    recovered = [r for r in rows if r["outcome"] == "fail" and r["rule"] == "reset.returns-running"]
    assert recovered and all("recovered by walking the FSM back to RUNNING" in r["message"] for r in recovered)
    # every later test still ran: as many arc tests passed as on the clean sim minus the ones that failed
    assert sum(r["outcome"] == "pass" for r in rows) > 20


class _Stuck:
    """A device whose reset succeeds, whose state stays STOP_COPY, and that refuses every SET."""

    name = "stuck0"
    closed = False

    def to_safe_state(self):
        return "reset"

    def get_state_raw(self):
        return 0, int(MigState.STOP_COPY), -1

    def try_set_state(self, state):
        return SetResult(5, int(state), int(state), None)

    def close(self, safe=True):
        self.closed = True


def test_device_retired_only_when_every_way_back_fails(monkeypatch):
    monkeypatch.setattr(fixtures, "open_device", lambda profile, device_id, role="source": _Stuck())
    profile = types.SimpleNamespace(name="stuck", flags=7)
    pool = fixtures.DevicePool(types.SimpleNamespace(targets={"stuck": Target(profile, ("s0",))}))
    finding = pool.recover(profile, 0)
    assert isinstance(finding, SpecViolation) and finding.rule_id == "reset.returns-running"
    reason = pool.broken[("stuck", 0)]
    assert "walking the FSM back to RUNNING: SET STOP failed with EIO" in reason
    assert "closing and reopening the device: then GET reports STOP_COPY" in reason
    with pytest.raises(pytest.skip.Exception) as skip:
        pool.get(profile, 0)
    assert skip_outcome(skip.value) is Outcome.INFRA_ERROR      # the type says it, not the text


def test_should_rule_not_met_is_a_recorded_pass(tmp_path):
    profile = write_profile(tmp_path, "sim-p2p-precopy", "should-initial-grows",
                            faults=[{"name": "precopy_initial_grows"}])
    code, rows, out = run_suites(profile, tmp_path, "-k", "initial_bytes_decrease",
                                 areas=("data/test_precopy.py",))
    assert code == 0, out[-2000:]
    (row,) = rows
    assert row["outcome"] == "pass" and row["rule"] == "precopy.initial-bytes-decrease"
    assert row["should"] == "precopy.initial-bytes-decrease"
    assert row["message"].startswith(SHOULD_NOT_MET + "[precopy.initial-bytes-decrease]")
    assert shown(row) == SHOULD_UNMET


def test_should_level_can_be_made_binding():
    from vfio_conform.suitelib.checks import drain_should_not_met, expect
    drain_should_not_met()
    with pytest.warns(UserWarning):
        expect(False, "precopy.enomsg-at-temporary-end", "read returned 0")
    assert [v.rule_id for v in drain_should_not_met()] == ["precopy.enomsg-at-temporary-end"]
    with pytest.raises(SpecViolation):
        expect(False, "precopy.enomsg-at-temporary-end", "read returned 0", level="must")


def test_a_sigterm_while_a_device_opens_is_acted_on_once_the_pool_holds_it(monkeypatch):
    """SIGTERM in the middle of opening a device: the pool still owns the device (its teardown
    closes it before an inventory gives the device back to its driver), then Terminated is raised."""
    import os
    import signal
    from vfio_conform.base import interrupts

    def opening(profile, device_id, role="source"):
        os.kill(os.getpid(), signal.SIGTERM)     # arrives while the device is being opened
        return _Stuck()

    monkeypatch.setattr(fixtures, "open_device", opening)
    profile = types.SimpleNamespace(name="stuck", flags=7)
    pool = fixtures.DevicePool(types.SimpleNamespace(targets={"stuck": Target(profile, ("s0",))}))
    previous = signal.getsignal(signal.SIGTERM)
    interrupts.install_sigterm()
    try:
        with pytest.raises(interrupts.Terminated):
            pool.get(profile, 0)
    finally:
        interrupts.restore_sigterm()
        interrupts._TERMINATED.clear()
        signal.signal(signal.SIGTERM, previous)
    assert isinstance(pool.devices[("stuck", 0)], _Stuck)      # owned: the pool's teardown closes it
