"""MIG_DATA_SIZE: available in every reachable state; the estimate matches the STOP_COPY stream."""
import pytest

from vfio_conform.checks import expect, expect_errno
from vfio_conform.model.fsm import supports
from vfio_conform.plugin.classify import NOT_SUPPORTED
from vfio_conform.uapi.enums import MigState

STATES = [s for s in MigState if s is not MigState.ERROR]


@pytest.mark.vc_spec("datasize.any-state")
@pytest.mark.parametrize("state", STATES, ids=[s.name for s in STATES])
def test_data_size_in_every_state(device, profile, sessions, state):
    if not supports(profile.flags, state):
        pytest.skip(f"{NOT_SUPPORTED}profile {profile.name} has no {state.name}")
    sessions.enter(device, state, prime=False)
    code, size = device.try_mig_data_size()
    expect_errno(code, 0, "datasize.any-state", f"MIG_DATA_SIZE GET in {state.name}", device)


@pytest.mark.vc_spec("stream.data-size-estimate")
def test_running_estimate_matches_stream(device, profile, sessions):
    """The estimate read while RUNNING predicts the STOP_COPY stream (profile tolerance)."""
    estimate = device.mig_data_size()
    fd = sessions.enter(device, MigState.STOP_COPY)
    actual = fd.drain().length
    allowed = profile.data_size_tolerance * actual
    expect(abs(estimate - actual) <= allowed, "stream.data-size-estimate",
           f"MIG_DATA_SIZE in RUNNING says {estimate}, the stream had {actual} bytes", device)
