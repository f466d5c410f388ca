"""Hostile resume streams: each must end in an error at write() or RESUMING -> STOP; reset recovers."""

import pytest

from vfio_conform.suitelib.checks import expect, expect_state
from vfio_conform.suitelib.depth.streams import flip, foreign_stream, resume, save_bytes
from vfio_conform.uapi.enums import MigState
from vfio_conform.verify import hook_for
from vfio_conform.outcomes import not_supported

pytestmark = pytest.mark.vc_requires("reset")
RULE = "resume.hostile-stream-refused"


def _refused(dst, sessions, data: bytes, what: str, chunk: int = 1 << 20, rule: str = RULE):
    out = resume(dst, sessions, data, chunk)
    expect(out.refused, rule, f"{what} loaded silently: {out.describe()}", dst)
    _recover(dst)
    return out


def _recover(dst) -> None:
    code = dst.try_reset()
    expect(code == 0, "reset.returns-running", f"VFIO_DEVICE_RESET after a hostile stream: errno {code}", dst)
    expect_state(dst, MigState.RUNNING, "reset.returns-running", "after the reset that ends a hostile resume")


@pytest.fixture
def stream(device, sessions):
    """The device's STOP_COPY stream, saved right after the pool's reset (an empty one breaks reset.device-usable)."""
    data = save_bytes(device, sessions)
    expect(len(data) > 0, "reset.device-usable",
           "the STOP_COPY stream saved after VFIO_DEVICE_RESET is empty (nothing to mutate)", device)
    return data


@pytest.mark.vc_spec(RULE)
def test_truncated_at_header_boundaries(device, peer_device, profile, sessions, stream):
    """Cut at each header field boundary (profile hook) or 0, 1, 8, 16, 24, len-1."""
    for cut in hook_for(profile).cuts(len(stream)):
        _refused(peer_device, sessions, stream[:cut], f"stream cut at {cut} of {len(stream)} bytes")


@pytest.mark.vc_spec(RULE)
@pytest.mark.parametrize("extra", [1, 16, 4096])
def test_extra_bytes(device, peer_device, profile, sessions, stream, extra):
    _refused(peer_device, sessions, stream + b"\xa5" * extra, f"stream + {extra} extra bytes")


@pytest.mark.vc_spec(RULE)
def test_zero_length_stream(device, peer_device, profile, sessions):
    _refused(peer_device, sessions, b"", "empty stream")


@pytest.mark.vc_spec(RULE)
def test_foreign_device_stream(device, peer_device, profile, sessions, stream):
    """A stream from another device type (a reference device with another layout)."""
    other = foreign_stream()
    if other == stream:
        pytest.skip("the foreign stream equals this device's stream")
    _refused(peer_device, sessions, other, f"foreign {len(other)}-byte stream")


@pytest.mark.vc_spec("resume.corrupt-header-refused")
def test_resume_rejects_corrupt_header(device, peer_device, profile, sessions, stream):
    """Header bytes flipped (length right): RESUMING -> STOP must fail even if write() complained."""
    flips = hook_for(profile).flips(len(stream))
    if not flips:
        not_supported(f"the verify hook {profile.verify!r} documents no header in this device's stream: "
                      "no byte's corruption is detectable by the device")
    for offset in flips:
        out = resume(peer_device, sessions, flip(stream, offset))
        expect(out.stop_errno != 0, "resume.corrupt-header-refused",
               f"byte {offset} flipped: RESUMING->STOP succeeded ({out.describe()})", peer_device)
        _recover(peer_device)


@pytest.mark.vc_spec("resume.segmentation-free")
@pytest.mark.parametrize("chunk", [1, 3, 7, 4099])
def test_odd_chunk_sizes_resume(device, peer_device, profile, sessions, stream, chunk):
    out = resume(peer_device, sessions, stream, chunk)
    expect(not out.refused, "resume.segmentation-free", f"writes of {chunk} bytes: {out.describe()}",
           peer_device)


@pytest.mark.vc_spec(RULE)
def test_mutated_streams(device, peer_device, profile, sessions, stream, request):
    """Hypothesis mutations of a real stream (cut, extend, flip header bytes); seed recorded."""
    from hypothesis import HealthCheck, given, settings      # imported by the one test that uses it
    from hypothesis import seed as use_seed
    from hypothesis import strategies as st
    hook, seed = hook_for(profile), profile.walk.seed
    request.node.user_properties.append(("hypothesis_seed", seed))
    print(f"hypothesis seed {seed} ({profile.walk.mutations} mutations)")
    flips = hook.flips(len(stream))         # a stream without a documented header: no flip mutations
    kinds = [st.tuples(st.just("cut"), st.integers(0, len(stream) - 1)),
             st.tuples(st.just("extend"), st.integers(1, 64))]
    if flips:
        kinds += [st.tuples(st.just("flip"), st.sampled_from(flips)),
                  st.tuples(st.just("cut-flip"), st.sampled_from(flips))]
    mutation = st.one_of(*kinds)

    @use_seed(seed)
    @settings(max_examples=profile.walk.mutations, deadline=None, database=None, print_blob=False,
              suppress_health_check=list(HealthCheck))
    @given(mutation)
    def check(m):
        kind, arg = m
        data = {"cut": lambda: stream[:arg], "extend": lambda: stream + bytes(range(arg)),
                "flip": lambda: flip(stream, arg), "cut-flip": lambda: flip(stream, arg)[:-1]}[kind]()
        _refused(peer_device, sessions, data, f"mutation {kind}({arg})")
    check()
