"""Hostile resume streams: each must end in an error at write() or RESUMING -> STOP; reset recovers."""

import pytest

from vfio_conform.api import (bounded, cut, expect, expect_state, extended, flipped, foreign_stream,
                               hook_for, MigState, Mutated, not_supported, resume, save_stream)

pytestmark = pytest.mark.vc_requires("reset")
RULE = "resume.hostile-stream-refused"


def _refused(dst, sessions, data, what: str, chunk: int = 1 << 20, rule: str = RULE):
    out = resume(dst, sessions, data, chunk)
    expect(out.refused, rule, f"{what} loaded silently: {out.describe()}", dst)
    _recover(dst)
    return out


def _recover(dst) -> None:
    code = dst.try_reset()
    expect(code == 0, "reset.returns-running", f"VFIO_DEVICE_RESET after a hostile stream: errno {code}", dst)
    expect_state(dst, MigState.RUNNING, "reset.returns-running", "after the reset that ends a hostile resume")


@pytest.fixture(scope="module")
def saved_after_reset():
    """Streams saved once per module and device: every test starts from the pool's reset, so one
    save serves them all (a gigabyte state is saved once, not once per test)."""
    cache: dict = {}
    yield cache
    for saved in cache.values():
        saved.close()


@pytest.fixture
def stream(device, profile, sessions, saved_after_reset):
    """The device's STOP_COPY stream, saved right after the pool's reset to the spill directory (an
    empty one breaks reset.device-usable)."""
    key = (profile.name, device.name)
    data = saved_after_reset.get(key)
    if data is None:
        data = save_stream(device, sessions, keep=False)
        expect(len(data) > 0, "reset.device-usable",
               "the STOP_COPY stream saved after VFIO_DEVICE_RESET is empty (nothing to mutate)", device)
        saved_after_reset[key] = data
    return data


def boundaries(profile, stream) -> list[int]:
    """Record boundaries of `stream`: the profile's hook parses them, else where the device's reads ended."""
    return hook_for(profile).record_offsets(stream.read, len(stream)) or list(stream.read_ends)


@pytest.mark.vc_spec(RULE)
def test_truncated_at_header_boundaries(device, peer_device, profile, sessions, stream):
    """Cut at each header field boundary (profile hook) or 0, 1, 8, 16, 24, len-1."""
    for at in hook_for(profile).cuts(len(stream)):
        _refused(peer_device, sessions, cut(stream, at), f"stream cut at {at} of {len(stream)} bytes")


@pytest.mark.vc_spec(RULE)
@pytest.mark.parametrize("extra", [1, 16, 4096])
def test_extra_bytes(device, peer_device, profile, sessions, stream, extra):
    _refused(peer_device, sessions, extended(stream, b"\xa5" * extra), f"stream + {extra} extra bytes")


@pytest.mark.vc_spec(RULE)
def test_zero_length_stream(device, peer_device, profile, sessions):
    _refused(peer_device, sessions, b"", "empty stream")


@pytest.mark.vc_spec(RULE)
def test_foreign_device_stream(device, peer_device, profile, sessions, stream):
    """A stream from another device type (a reference device with another layout)."""
    other = foreign_stream()
    if len(other) == len(stream) and other == stream.read(0, len(other)):
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
        out = resume(peer_device, sessions, flipped(stream, offset))
        expect(out.stop_errno != 0, "resume.corrupt-header-refused",
               f"byte {offset} flipped: RESUMING->STOP succeeded ({out.describe()})", peer_device)
        _recover(peer_device)


@pytest.mark.vc_spec("resume.segmentation-free")
@pytest.mark.parametrize("chunk", [1, 3, 7, 4099])
def test_odd_chunk_sizes_resume(device, peer_device, profile, sessions, stream, chunk, request):
    """The stream in `chunk`-byte writes: all of it on a small state; on a big one the header, both
    sides of every record boundary and a bounded sample of the body (the rest in large writes)."""
    plan = bounded(len(stream), chunk, boundaries(profile, stream))
    request.node.user_properties.append(("stream_coverage", plan.coverage.describe()))
    print(f"coverage: {plan.coverage.describe()}")
    out = resume(peer_device, sessions, stream, chunk, plan=plan)
    expect(not out.refused, "resume.segmentation-free",
           f"{plan.coverage.describe()}: {out.describe()}", peer_device)


#: A stream up to this long is cut anywhere by the mutations; a longer one at the points _cut_points names.
SMALL = 1 << 20


def _cut_points(length: int, marks, header_cuts) -> list[int] | None:
    """None (cut anywhere) for a small stream; else header cuts, the record boundaries (and their
    neighbours) in the first 16 SMALL and the last SMALL bytes, and each 4 KiB step of the first
    SMALL bytes: a cut deep in the body costs a write of the whole prefix, and the record boundaries
    are where a parser decides."""
    if length <= SMALL:
        return None
    points = {*header_cuts, *range(0, SMALL, 4096)}
    for b in marks:
        if b <= 16 * SMALL or b >= length - SMALL:
            points.update((b - 1, b, b + 1))
    return sorted(p for p in points if 0 <= p < length)


@pytest.mark.vc_spec(RULE)
def test_mutated_streams(device, peer_device, profile, sessions, stream, request):
    """Hypothesis mutations of a real stream (cut, extend, flip header bytes); seed recorded."""
    from hypothesis import HealthCheck, assume, given, settings      # imported by the one test that uses it
    from hypothesis import seed as use_seed
    from hypothesis import strategies as st
    hook, seed = hook_for(profile), profile.walk.seed
    request.node.user_properties.append(("hypothesis_seed", seed))
    flips = hook.flips(len(stream))         # a stream without a documented header: no flip mutations
    cuts = _cut_points(len(stream), boundaries(profile, stream), hook.cuts(len(stream)))
    where = ("anywhere" if cuts is None else
             f"from {len(cuts)} points (header cuts, record boundaries near both ends, the first {SMALL} bytes)")
    request.node.user_properties.append(("stream_coverage", f"cuts {where}"))
    print(f"hypothesis seed {seed} ({profile.walk.mutations} mutations; cuts {where})")
    kinds = [st.tuples(st.just("cut"), st.integers(0, len(stream) - 1) if cuts is None else st.sampled_from(cuts)),
             st.tuples(st.just("extend"), st.integers(1, 64))]
    if flips:
        kinds += [st.tuples(st.just("flip"), st.sampled_from(flips)),
                  st.tuples(st.just("cut-flip"), st.sampled_from(flips))]
    mutation = st.one_of(*kinds)

    budget = {"left": 2 * len(stream), "long": 0, "left_out": 0}

    @use_seed(seed)
    @settings(max_examples=profile.walk.mutations, deadline=None, database=None, print_blob=False,
              suppress_health_check=list(HealthCheck))
    @given(mutation)
    def check(m):
        kind, arg = m
        data = {"cut": lambda: cut(stream, arg), "extend": lambda: extended(stream, bytes(range(arg))),
                "flip": lambda: flipped(stream, arg),
                "cut-flip": lambda: Mutated(stream, flips=((arg, 0xFF),), cut=len(stream) - 1)}[kind]()
        if cuts is not None and data.length > SMALL:        # a long write: two streams' worth in all
            if data.length > budget["left"]:
                budget["left_out"] += 1
                assume(False)
            budget["left"] -= data.length
            budget["long"] += 1
        _refused(peer_device, sessions, data, f"mutation {kind}({arg})")
    check()
    if cuts is not None:
        note = (f"{budget['long']} mutations longer than {SMALL} bytes written (a budget of twice the "
                f"stream), {budget['left_out']} more drawn and left out")
        request.node.user_properties.append(("stream_mutations", note))
        print(note)
