"""Hostile resume streams: each must end in an error at write() or RESUMING -> STOP; reset recovers.

On a big stream (over 1 MiB) the module is bounded by design: the device's stream is saved once, each
hostile stream is that file plus an edit (suitelib/spill.py), and only the tests about the stream's
end write it whole - a cut at length-1, each size of trailing bytes, the hook's flips (the sim's
include the last byte). The odd-chunk writes share one resume for all their sizes
(suitelib/writeplan.py `combined`); the hypothesis mutations cut, and flip and cut, within the
first MiB. Each test records what it covered (`stream_coverage`).
"""

import pytest

from vfio_conform.api import (bounded, combined, cut, expect, expect_state, extended, flipped, foreign_stream,
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
def test_truncated_at_header_boundaries(device, peer_device, profile, sessions, stream, request):
    """Cut at each header field boundary (profile hook) or 0, 1, 8, 16, 24, and at length-1."""
    length = len(stream)
    points = hook_for(profile).cuts(length)
    covered = f"cuts at {points} of {length} bytes"
    request.node.user_properties.append(("stream_coverage", covered))
    print(covered)
    for at in points:
        _refused(peer_device, sessions, cut(stream, at), f"stream cut at {at} of {length} bytes")


@pytest.mark.vc_spec(RULE)
@pytest.mark.parametrize("extra", [1, 16, 4096])
def test_extra_bytes(device, peer_device, profile, sessions, stream, extra, request):
    """The whole stream, then `extra` bytes: refused at write() or at RESUMING -> STOP."""
    request.node.user_properties.append(("stream_coverage", f"the {len(stream)}-byte stream + {extra} bytes"))
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
def test_resume_rejects_corrupt_header(device, peer_device, profile, sessions, stream, request):
    """Header bytes flipped (length right): RESUMING -> STOP must fail even if write() complained."""
    flips = hook_for(profile).flips(len(stream))
    if not flips:
        not_supported(f"the verify hook {profile.verify!r} documents no header in this device's stream: "
                      "no byte's corruption is detectable by the device")
    request.node.user_properties.append(("stream_coverage", f"bytes {flips} of {len(stream)} flipped, one at a time"))
    for offset in flips:
        out = resume(peer_device, sessions, flipped(stream, offset))
        expect(out.stop_errno != 0, "resume.corrupt-header-refused",
               f"byte {offset} flipped: RESUMING->STOP succeeded ({out.describe()})", peer_device)
        _recover(peer_device)


#: The write sizes of the odd-chunk test: a byte at a time, two sizes that never align, a page + 3.
CHUNKS = (1, 3, 7, 4099)


@pytest.fixture(scope="module")
def shared_resumes():
    """(profile, source, destination) -> the outcome and coverage of the one resume all CHUNKS share."""
    return {}


@pytest.mark.vc_spec("resume.segmentation-free")
@pytest.mark.parametrize("chunk", CHUNKS)
def test_odd_chunk_sizes_resume(device, peer_device, profile, sessions, stream, chunk, request, shared_resumes):
    """The stream in `chunk`-byte writes: all of it on a small state. On a big one the header, both
    sides of record boundaries and a bounded sample of the body, in one resume shared by the four sizes
    (each size has its turn at every fourth boundary and sample; the rest in large writes); when that
    resume is refused, this size's own bounded plan (the header, every boundary) says whether it is."""
    shared = None
    if len(stream) > SMALL:
        key = (profile.name, device.name, peer_device.name)
        if key not in shared_resumes:
            plan_all, coverage = combined(len(stream), CHUNKS, boundaries(profile, stream), budget=SMALL)
            shared_resumes[key] = (resume(peer_device, sessions, stream, plan=plan_all), coverage)
        shared = shared_resumes[key]
    if shared is not None and not shared[0].refused:
        out, covered = shared[0], shared[1][chunk].describe()
    else:
        plan = bounded(len(stream), chunk, boundaries(profile, stream), budget=SMALL)
        covered = plan.coverage.describe()
        if shared is not None:
            covered += " (the resume shared with the other sizes was refused: this size on its own)"
            if peer_device.get_state() != MigState.RUNNING:
                _recover(peer_device)                   # the refused shared resume was this item's
        out = resume(peer_device, sessions, stream, chunk, plan=plan)
    request.node.user_properties.append(("stream_coverage", covered))
    print(f"coverage: {covered}")
    expect(not out.refused, "resume.segmentation-free", f"{covered}: {out.describe()}", peer_device)


#: A stream up to this long is cut anywhere by the mutations; a longer one at the points _cut_points names.
SMALL = 1 << 20


def _cut_points(length: int, marks, header_cuts) -> list[int] | None:
    """None (cut anywhere) for a small stream; else header cuts, the record boundaries (and their
    neighbours) and each 4 KiB step in the first SMALL bytes: a cut deep in the body costs a write of
    the whole prefix, and the stream's end has its own tests (a cut at length-1, trailing bytes, the
    hook's flips)."""
    if length <= SMALL:
        return None
    points = {*header_cuts, *range(0, SMALL, 4096)}
    for b in marks:
        if b < SMALL:
            points.update((b - 1, b, b + 1))
    return sorted(p for p in points if 0 <= p < SMALL)


@pytest.mark.vc_spec(RULE)
def test_mutated_streams(device, peer_device, profile, sessions, stream, request):
    """Hypothesis mutations of a real stream (cut, extend, flip header bytes); seed recorded. On a big
    stream every mutation ends within the first SMALL bytes (a cut, or a header byte flipped and a cut)."""
    from hypothesis import HealthCheck, given, settings      # imported by the one test that uses it
    from hypothesis import seed as use_seed
    from hypothesis import strategies as st
    hook, seed = hook_for(profile), profile.walk.seed
    request.node.user_properties.append(("hypothesis_seed", seed))
    cuts = _cut_points(len(stream), boundaries(profile, stream), hook.cuts(len(stream)))
    flips = hook.flips(len(stream))         # a stream without a documented header: no flip mutations
    if cuts is not None:
        flips = [f for f in flips if f < SMALL - 1]
    where = ("anywhere" if cuts is None else
             f"within the first {SMALL} bytes, from {len(cuts)} points (header cuts, record boundaries, "
             f"every 4 KiB); the end of the stream: test_truncated_at_header_boundaries, test_extra_bytes, "
             f"test_resume_rejects_corrupt_header")
    request.node.user_properties.append(("stream_coverage", f"mutations {where}"))
    print(f"hypothesis seed {seed} ({profile.walk.mutations} mutations; {where})")
    kinds = [st.tuples(st.just("cut"), st.integers(0, len(stream) - 1) if cuts is None else st.sampled_from(cuts))]
    if cuts is None:
        kinds.append(st.tuples(st.just("extend"), st.integers(1, 64)))
    if flips and cuts is None:          # a big stream's flips, whole: test_resume_rejects_corrupt_header
        kinds.append(st.tuples(st.just("flip"), st.sampled_from(flips)))
    if flips:
        kinds.append(st.tuples(st.just("cut-flip"), st.sampled_from(flips)))
    mutation = st.one_of(*kinds)
    end = len(stream) - 1 if cuts is None else SMALL - 1      # where a cut-flip stream stops

    @use_seed(seed)
    @settings(max_examples=profile.walk.mutations, deadline=None, database=None, print_blob=False,
              suppress_health_check=list(HealthCheck))
    @given(mutation)
    def check(m):
        kind, arg = m
        data = {"cut": lambda: cut(stream, arg), "extend": lambda: extended(stream, bytes(range(arg))),
                "flip": lambda: flipped(stream, arg),
                "cut-flip": lambda: Mutated(stream, flips=((arg, 0xFF),), cut=end)}[kind]()
        _refused(peer_device, sessions, data, f"mutation {kind}({arg}): {data.describe()}")
    check()
