"""MIG_DATA_SIZE: available in every reachable state; the estimate matches the STOP_COPY stream."""
import pytest

from vfio_conform.api import expect, expect_errno, MigState, REQUESTABLE_STATES, require_state



@pytest.mark.vc_spec("datasize.any-state")
@pytest.mark.parametrize("state", REQUESTABLE_STATES, ids=[s.name for s in REQUESTABLE_STATES])
def test_data_size_in_every_state(device, profile, sessions, state):
    require_state(profile, state)
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
