"""Round trips that verify device state through the profile's hook (vfio.h 4.5: STOP_COPY, RESUMING)."""
import pytest

from vfio_conform.api import (expect, expect_state, MigFlag, MigState, not_supported, plan, resume,
                               save_stream, SavedStream, verifier_for)

RULE = "roundtrip.state-preserved"


@pytest.fixture
def hook(profile, request):
    h = verifier_for(profile, request.config.hook)
    if not h.available:
        not_supported(f"profile {profile.name} has no verify hook (verify: none)")
    return h


def _land(dst, sessions, data, rule: str = RULE) -> None:
    """Resume `data` into `dst`, then STOP -> RUNNING."""
    out = resume(dst, sessions, data)
    expect(not out.refused, rule, f"destination refused a valid stream: {out.describe()}", dst)
    dst.set_state(MigState.RUNNING)
    expect_state(dst, MigState.RUNNING, "fsm.state-after-set", "after resume and STOP -> RUNNING")


def _verify(hook, dev, tag: int, rule: str = RULE, context: str = "", source=None) -> None:
    problems = hook.check(dev, tag, source=source)
    expect(not problems, rule, f"{context}: " + "; ".join(problems), dev)


@pytest.mark.vc_spec(RULE)
def test_round_trip_verified(device, peer_device, profile, sessions, hook):
    """RUNNING -> STOP_COPY on the source, resume into the destination, RUNNING: state verified."""
    hook.write(device, 101)
    hook.write(peer_device, 202)
    data = save_stream(device, sessions)
    _land(peer_device, sessions, data)
    _verify(hook, peer_device, 101, context="destination after A->B", source=device)


@pytest.mark.vc_spec(RULE)
def test_migrate_twice_a_b_a(device, peer_device, profile, sessions, hook):
    """A -> B, change nothing, then B -> A (after A was changed): A holds the original state."""
    hook.write(device, 303)
    _land(peer_device, sessions, save_stream(device, sessions))
    device.set_state(MigState.RUNNING)
    hook.write(device, 404)
    _land(device, sessions, save_stream(peer_device, sessions))
    _verify(hook, device, 303, context="source after A->B->A", source=peer_device)


@pytest.mark.vc_spec(RULE)
def test_same_stream_into_two_devices(device, peer_device, profile, sessions, hook):
    """One saved stream resumes into two devices (the destination and the source itself)."""
    hook.write(device, 505)
    data = save_stream(device, sessions)
    device.set_state(MigState.RUNNING)
    hook.write(device, 606)
    hook.write(peer_device, 707)
    _land(peer_device, sessions, data)
    _land(device, sessions, data)
    _verify(hook, peer_device, 505, context="first destination", source=device)
    _verify(hook, device, 505, context="second destination")


@pytest.mark.vc_spec("precopy.dirty-carried")
@pytest.mark.vc_requires(MigFlag.PRE_COPY)
def test_precopy_with_changing_source(device, peer_device, profile, sessions, hook, spill_file):
    """PRE_COPY iterations while the source changes: the destination gets the final state."""
    fd = sessions.enter(device, MigState.PRE_COPY)
    total = 0
    for tag in (811, 812, 813):
        hook.write(device, tag)
        total += fd.drain(4096, sink=spill_file, allow_enomsg=True).length
    hook.write(device, 814)
    for step in plan(MigState.PRE_COPY, MigState.STOP_COPY, profile.flags).path:
        expect(device.set_state(step) is None, "fsm.no-data-fd-otherwise", "new fd inside the saving group",
               device)
    total += fd.drain(1 << 20, sink=spill_file).length
    _land(peer_device, sessions, SavedStream.over(spill_file, total), "precopy.dirty-carried")
    _verify(hook, peer_device, 814, "precopy.dirty-carried", f"destination after {total} pre-copy+stop-copy bytes",
            source=device)
