"""A SET that fails part-way along a multi-arc path: the device is where the path says, or in ERROR.

vfio.h (MIG_DEVICE_STATE): "If this function fails then current device_state may be the original
operating state or some other state along the combination transition path", or ERROR (any -> ERROR).
A real device fails a step on demand only when resuming an incomplete stream; the sim's test hook
fails any step of any path.
"""
import pytest

from vfio_conform.api import (expect, MigState, not_supported, plan, read_state, rewound, supported_states,
                               write_file)

S = MigState


def _allowed(current: MigState, path) -> set[int]:
    return {int(current), *map(int, path), int(S.ERROR)}


def _expect_on_path(device, current: MigState, target: int, flags: int, context: str) -> None:
    path = plan(current, target, flags).path
    state = read_state(device, context)
    expect(state in _allowed(current, path), "fsm.failed-path-on-path",
           f"{context}: device is in {MigState.label(state)}, not {current.name}, a step of "
           f"{'->'.join(s.name for s in path)} or ERROR", device)


@pytest.mark.vc_spec("fsm.failed-path-on-path", "resume.incomplete-stream-fails", "fsm.get-state-ok")
def test_failed_resume_commit_on_a_long_path(device, profile, sessions, spill_file):
    """RESUMING -> RUNNING with one byte missing: the first arc must fail; the state is on the path."""
    source = sessions.save(device, spill_file)
    fd = sessions.enter(device, S.RESUMING, prime=False)
    with rewound(spill_file):
        write_file(fd, spill_file, source.length - 1)
    result = device.try_set_state(S.RUNNING)
    if result.data_fd is not None:
        sessions.fds.append(result.data_fd)
    expect(result.errno != 0, "resume.incomplete-stream-fails",
           f"RESUMING->RUNNING succeeded after {source.length - 1} of {source.length} bytes", device)
    _expect_on_path(device, S.RESUMING, S.RUNNING, profile.flags, "after the failed RESUMING->RUNNING")


@pytest.mark.vc_spec("fsm.failed-path-on-path", "fsm.get-state-ok")
def test_interior_step_failure_stays_on_path(device, profile, sessions):
    """Every multi-arc request, failed at each of its steps (sim test hook): the state is on the path."""
    hooks = device.test_hooks
    if hooks is None or not hasattr(hooks, "fail_step"):
        not_supported("the harness cannot make a step of this device fail on demand "
                    "(no test hook on this backend); the resume-commit case covers real devices")
    checked = 0
    for current in supported_states(profile.flags):
        for target in supported_states(profile.flags):
            arc = plan(current, target, profile.flags)
            if len(arc.path) < 2 or arc.hazard:
                continue
            for step in range(1, len(arc.path) + 1):
                device.reset()
                sessions.close()
                sessions.enter(device, current)
                hooks.fail_step(step)
                result = device.try_set_state(target)
                if result.data_fd is not None:
                    result.data_fd.close()
                what = f"SET {target.name} from {current.name} failing at step {step}"
                expect(result.errno != 0, "fsm.failed-path-on-path", f"{what} succeeded", device)
                _expect_on_path(device, current, target, profile.flags, f"after {what}")
                checked += 1
    assert checked, "the model has no multi-arc request for these flags"
