"""QEMU's VFIO migration (hw/vfio/migration.c, docs/consumers.md) replayed on the device.

Each test is one consumer path for the profile's flag set: the outgoing migration, the incoming one
(data_fd closed before or after leaving RESUMING), the failure path back to RUNNING from every point,
the pre-copy bookkeeping, and recovery after a failed SET (reset, and a close/reopen of the device).
"""
import errno

import pytest

from vfio_conform.api import (errno_name, expect, expect_running, MigFlag, MigState, not_supported,
                               open_device, Qemu, require_state, Saved, verify_arrived)


S = MigState


@pytest.mark.vc_spec("stream.round-trip")
def test_consumer_qemu_source(device, peer_device, profile, hook):
    """The outgoing migration for this flag set, then QEMU's incoming one: state verified. Its
    pre-copy rounds ask MIG_DATA_SIZE as QEMU does (Qemu.pending_exact, rule
    "consumer.qemu-converges", not a vc_spec mark: vfio-user, which lacks the feature, still runs
    the rest of the scenario)."""
    hook.write(device, 901)
    hook.write(peer_device, 902)
    src = Qemu(device, profile)
    saved = src.save()
    expect(len(saved) > 0, "stream.round-trip", f"QEMU read an empty stream | {src.where()}", device)
    expect(src.state is S.STOP, "fsm.state-after-set", f"source ends in {src.state.name}", device)
    Qemu(peer_device, profile).load(saved, close_before_start=False)
    verify_arrived(hook, peer_device, 901, "roundtrip.state-preserved", "QEMU destination after migration")


@pytest.mark.vc_spec("resume.close-keeps-data")
@pytest.mark.parametrize("close", ["in-resuming", "after-running"])
def test_consumer_qemu_destination(device, peer_device, profile, hook, close):
    """RUNNING -> RESUMING -> (RUNNING_P2P) -> RUNNING, the data_fd closed where QEMU closes it:
    in load cleanup while still RESUMING (paused destination) or after vm start (autostart)."""
    hook.write(device, 903)
    hook.write(peer_device, 904)
    saved = Qemu(device, profile).save()
    dst = Qemu(peer_device, profile)
    dst.load(saved, close_before_start=close == "in-resuming")
    expect_running(dst, "fsm.state-after-set", "QEMU destination after vm start")
    verify_arrived(hook, peer_device, 903, "roundtrip.state-preserved", f"destination, data_fd closed {close}")


#: Guest RAM as QEMU's IOVA ranges for DMA_LOGGING_START (a low and a high range, page aligned).
GUEST_RAM = [(0x10_0000, 64 * 4096), (0x1_0000_0000, 16 * 4096)]


@pytest.mark.vc_spec("dma.consumer-cycle")
def test_consumer_qemu_dirty_tracking(device, peer_device, profile, hook):
    """QEMU's default device dirty tracking (PROBE DMA_LOGGING_START succeeded at realize): START at
    the global dirty-log start, REPORT (host page size) at each sync, a final sync after the VM
    stopped, STOP at the end; RAM is set up before the VFIO device, so the first REPORT comes before
    QEMU's VFIO save setup."""
    hook.write(device, 907)
    q = Qemu(device, profile)
    q.realize()
    if not q.dirty_tracking:
        not_supported("PROBE DMA_LOGGING_START fails: QEMU does not use device dirty "
                    "tracking on this device (IOMMU dirty tracking, or migration blocked)")
    code = q.log_start(GUEST_RAM)
    expect(code == 0, "dma.consumer-cycle", f"DMA_LOGGING_START failed: {errno_name(code)} | {q.where()}", device)
    code = q.log_sync(GUEST_RAM)
    if code == errno.EOPNOTSUPP:
        q.log_stop()
        # include/linux/iova_bitmap.h: without CONFIG_IOMMUFD_DRIVER every REPORT fails like this.
        not_supported("DMA_LOGGING_REPORT gives EOPNOTSUPP on this kernel (built without "
                    "CONFIG_IOMMUFD_DRIVER): QEMU's default migration fails in RAM save setup ('Failed to "
                    "get DMA logging report'); x-device-dirty-page-tracking=off avoids it. The cause is the "
                    "kernel's configuration, not the driver")
    expect(code == 0, "dma.consumer-cycle", f"DMA_LOGGING_REPORT failed: {errno_name(code)} | {q.where()}",
           device)
    saved = Saved()
    q.save_setup()
    if q.state is S.PRE_COPY:
        q.iterate(saved, max_rounds=64)
        expect(q.log_sync(GUEST_RAM) == 0, "dma.consumer-cycle", f"REPORT during pre-copy | {q.where()}",
               device)
    q.vm_stop()
    code = q.log_sync(GUEST_RAM)                 # the final sync, with the VM (and device) stopped
    expect(code == 0, "dma.consumer-cycle", f"final DMA_LOGGING_REPORT after vm stop: {errno_name(code)} | "
                                            f"{q.where()}", device)
    q.complete(saved)
    q.save_cleanup()
    code = q.log_stop()
    expect(code == 0, "dma.consumer-cycle", f"DMA_LOGGING_STOP failed: {errno_name(code)} | {q.where()}", device)
    Qemu(peer_device, profile).load(saved, close_before_start=False)
    verify_arrived(hook, peer_device, 907, "roundtrip.state-preserved", "QEMU destination after dirty-tracked migration")


ABORT_POINTS = ["setup", "iterate", "stopped", "complete", "cleanup"]


@pytest.mark.vc_spec("fsm.legal-arc")
@pytest.mark.parametrize("point", ABORT_POINTS)
def test_consumer_qemu_source_abort(device, profile, point):
    """A migration that fails at `point`: save cleanup, vm start, then the failure notifier's SET
    RUNNING; the device is RUNNING and migrates again."""
    if point == "iterate":
        require_state(profile, S.PRE_COPY)
    q = Qemu(device, profile)
    q.realize()
    q.save_setup()
    if point == "iterate":
        q.query_precopy()
        data = q.save_block(stop_copy=False)
        q.account(len(data))
    if point in ("stopped", "complete", "cleanup"):
        q.vm_stop()
    if point in ("complete", "cleanup"):
        q.set(S.STOP_COPY, same_state=True)
        q.save_block(stop_copy=True)             # part of the stream read, then the failure
    if point == "cleanup":
        q.save_cleanup()
    vm_was_stopped = q.state not in (S.RUNNING, S.PRE_COPY)
    q.save_cleanup()
    if vm_was_stopped:
        q.vm_start()
    q.set(S.RUNNING)                            # MIG_EVENT_FAILED: set_state_or_reset(RUNNING)
    expect_running(q, "fsm.state-after-set", f"after a migration aborted at {point}")
    again = Qemu(device, profile).save()
    expect(len(again) > 0, "stream.round-trip", f"the migration after the abort at {point} read "
                                                     "an empty stream", device)


@pytest.mark.vc_spec("consumer.qemu-initial-data-sent")
@pytest.mark.vc_requires(MigFlag.PRE_COPY)
def test_consumer_qemu_source_precopy_info(device, profile):
    """PRECOPY_INFO as QEMU keeps it: each read counts against initial_bytes first (a 'should' for
    the device's estimates), and QEMU's 'initial data sent' point is reached on an idle device.
    A failed PRECOPY_INFO is what QEMU makes of it: 0 initial, 0 dirty bytes, no error, and the
    migration converges (measured with QEMU 10 on mtty_noinfo): a 'should' here; the uAPI rule it
    breaks (precopy.info-works-in-precopy) is the data suites'."""
    q = Qemu(device, profile)
    q.realize()
    q.save_setup()
    opened = (q.init, q.dirty)
    step = max(1, min(q.bufsize, q.init // 3 or 1))
    mismatches, saved = [], Saved()
    for _ in range(8):
        before = _precopy_info(q, device, "before a read")
        code, data = q.fd.try_read(step)
        q.log.append(f"read({step}): {errno_name(code)}, {len(data)} bytes")
        if code or not data:
            break
        saved.append(data)
        after = _precopy_info(q, device, "after a read")
        want = (max(0, before[0] - len(data)), 0)
        if after != want:
            mismatches.append(f"read of {len(data)} bytes: initial/dirty {before} -> {after}, expected {want}")
    expect(not mismatches, "consumer.qemu-precopy-accounting",
           f"PRECOPY_INFO at open {opened}: " + "; ".join(mismatches[:3])
           + " (a 'should' in vfio.h: QEMU's estimate drifts)", device)
    q.init, q.dirty = 0, 0
    rounds = opened[0] // max(q.bufsize, 1) + 16
    expect(q.iterate(saved, max_rounds=rounds), "consumer.qemu-initial-data-sent",
           f"after {rounds} pre-copy rounds QEMU's initial count is {q.init} (PRECOPY_INFO at open "
           f"{opened}): QEMU never tells the destination that the initial data was sent | {q.where()}",
           device)


def _precopy_info(q: Qemu, device, when: str) -> tuple[int, int]:
    """QEMU's PRECOPY_INFO query (vfio_query_precopy_size): a failure is swallowed and counts 0, 0,
    which QEMU's accounting then carries (a 'should' finding, not a failed migration)."""
    got = q.query_precopy()
    expect(got is not None, "consumer.qemu-precopy-accounting",
           f"VFIO_MIG_GET_PRECOPY_INFO {when} in {q.state.name} failed ({q.log[-1]}): QEMU reports no "
           f"error, counts 0 initial and 0 dirty bytes and marks the initial data sent at once "
           f"(vfio_query_precopy_size) | {q.where()}", device)
    return got if got is not None else (0, 0)


@pytest.mark.vc_spec("reset.returns-running")
def test_consumer_qemu_recovery(device, peer_device, profile, hook):
    """A destination whose load stopped half way (fd closed in load cleanup): vm start's SET fails,
    QEMU resets (its recover state is ERROR) and the device then takes a whole migration."""
    hook.write(device, 905)
    saved = Qemu(device, profile).save()
    dst = Qemu(peer_device, profile)
    dst.set(S.RESUMING)
    dst.write_saved(saved, "stream.round-trip", limit=len(saved) // 2)
    dst.close_fd()
    first = S.RUNNING_P2P if profile.flags & MigFlag.P2P else S.RUNNING
    result = dst.try_set(first)
    expect(result.errno != 0, "resume.incomplete-stream-fails",
           f"SET {first.name} succeeded on half a stream | {dst.where()}", peer_device)
    code, state, _ = peer_device.get_state_raw()
    expect(code == 0 and state in (S.RESUMING, S.ERROR), "fsm.failed-set-keeps-state",
           f"after the failed SET, GET reports {MigState.label(state)} ({errno_name(code)})", peer_device)
    dst.state = MigState(state)
    expect(dst.reset() == 0, "reset.returns-running", f"VFIO_DEVICE_RESET from {MigState.label(state)} "
                                                      f"failed | {dst.where()}", peer_device)
    expect_running(dst, "reset.returns-running", f"after VFIO_DEVICE_RESET from {MigState.label(state)}")
    Qemu(peer_device, profile).load(saved, close_before_start=True)
    verify_arrived(hook, peer_device, 905, "reset.device-usable", "destination migrated after the recovery")


@pytest.mark.vc_spec("reset.reopen-running")
def test_consumer_qemu_recovery_reopen(device_pool, profile):
    """Close and reopen the device fd after a migration left it in STOP (never in RESUMING: mtty
    oopses there, vfio-uapi.md 0.3c). QEMU assumes RUNNING at realize without asking."""
    device = device_pool.make_running(profile, 0)
    q = Qemu(device, profile)
    q.realize()
    q.save_setup()
    q.vm_stop()
    q.save_cleanup()
    expect(q.state is S.STOP, "fsm.state-after-set", f"source ends in {q.state.name}", device)
    name, key = device.name, (profile.name, 0)
    device.close(safe=False)
    reopened = open_device(profile, name)
    device_pool.devices[key] = reopened
    code, state, _ = reopened.get_state_raw()
    expect(not code and state == S.RUNNING, "reset.reopen-running",
           f"after close and reopen {name} is in {MigState.label(state)} ({errno_name(code)}), not "
           "RUNNING; QEMU assumes RUNNING", reopened)
    saved = Qemu(reopened, profile).save()
    expect(len(saved) > 0, "stream.round-trip", "QEMU read an empty stream after reopen", reopened)
    reopened.to_safe_state()
