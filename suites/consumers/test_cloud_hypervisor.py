"""cloud-hypervisor's VFIO migration v2 (pci/src/vfio.rs, docs/consumers.md) replayed on the device:
snapshot, restore, live migration with DMA logging, and recovery after a failed load."""
import errno
import mmap

import pytest

from vfio_conform.api import (CloudHypervisor, errno_name, expect, expect_running, MigState, not_supported,
                               verify_arrived)


S = MigState
#: Guest RAM as cloud-hypervisor would hand it to DMA_LOGGING_START (two regions, page aligned).
GUEST_RAM = [(0x10_0000, 64 * 4096), (0x100_0000, 16 * 4096)]


@pytest.mark.vc_spec("stream.round-trip")
def test_consumer_ch_snapshot(device, peer_device, profile, hook):
    """pause (STOP), STOP_COPY read to the end, STOP, resume (RUNNING); the blob restores a peer."""
    hook.write(device, 921)
    hook.write(peer_device, 922)
    ch = CloudHypervisor(device, profile)
    blob = ch.snapshot()
    expect(len(blob) > 0, "stream.round-trip", f"empty snapshot | {ch.where()}", device)
    ch.resume()
    expect_running(ch, "fsm.state-after-set", "source resumed after the snapshot")
    CloudHypervisor(peer_device, profile).restore(blob)
    verify_arrived(hook, peer_device, 921, "roundtrip.state-preserved", "peer restored from the snapshot")


@pytest.mark.vc_spec("stream.round-trip")
def test_consumer_ch_restore(device, profile, hook):
    """Same-host snapshot and restore: the device changes after the snapshot, the restore (RUNNING ->
    RESUMING, one write, RESUMING -> RUNNING with the fd still held) brings the snapshot back."""
    hook.write(device, 931)
    ch = CloudHypervisor(device, profile)
    blob = ch.snapshot()
    ch.resume()
    hook.write(device, 932)
    CloudHypervisor(device, profile).restore(blob)
    verify_arrived(hook, device, 931, "roundtrip.state-preserved", "device restored from its own snapshot")


@pytest.mark.vc_spec("dma.consumer-cycle")
@pytest.mark.vc_requires("dma_logging")
def test_consumer_ch_live_migration(device, peer_device, profile, hook):
    """DMA_LOGGING_START over guest RAM, REPORT rounds, pause, REPORT, STOP_COPY save, REPORT,
    DMA_LOGGING_STOP; the destination restores the blob and resumes."""
    hook.write(device, 941)
    hook.write(peer_device, 942)
    src = CloudHypervisor(device, profile)
    src.create()
    code = src.start_dirty_log(GUEST_RAM, mmap.PAGESIZE)
    expect(code == 0, "dma.consumer-cycle", f"DMA_LOGGING_START failed: {errno_name(code)} | {src.where()}",
           device)
    granule = src.granule
    expect(granule >= 4096 and not granule & (granule - 1), "dma.consumer-cycle",
           f"DMA_LOGGING_START wrote back page_size {granule} | {src.where()}", device)
    code = src.dirty_log(GUEST_RAM)
    if code == errno.EOPNOTSUPP:
        src.stop_dirty_log()
        # include/linux/iova_bitmap.h: without CONFIG_IOMMUFD_DRIVER every REPORT fails like this.
        not_supported("DMA_LOGGING_REPORT gives EOPNOTSUPP on this kernel (built without "
                    "CONFIG_IOMMUFD_DRIVER): cloud-hypervisor's live migration cannot track device "
                    "dirty pages here; the cause is the kernel's configuration, not the driver")
    expect(code == 0, "dma.consumer-cycle", f"DMA_LOGGING_REPORT failed: {errno_name(code)} | {src.where()}",
           device)
    src.pause()
    expect(src.dirty_log(GUEST_RAM) == 0, "dma.consumer-cycle", f"REPORT after pause | {src.where()}", device)
    blob = src.save_migration_data()
    expect(src.dirty_log(GUEST_RAM) == 0, "dma.consumer-cycle", f"REPORT after snapshot | {src.where()}",
           device)
    code = src.stop_dirty_log()
    expect(code == 0, "dma.consumer-cycle",
           f"DMA_LOGGING_STOP failed: {errno_name(code)}: cloud-hypervisor stops dirty logging after the "
           f"destination completed, so the failure fails the migration and the source VM is resumed "
           f"beside the destination's (vmm/src/lib.rs send_migration, check_migration) | {src.where()}",
           device)
    CloudHypervisor(peer_device, profile).restore(blob)
    verify_arrived(hook, peer_device, 941, "roundtrip.state-preserved", "destination after live migration")


@pytest.mark.vc_spec("reset.returns-running")
def test_consumer_ch_recovery(device, peer_device, profile, hook, vc_context):
    """A restore whose blob is too long: the write (or resume) fails, cloud-hypervisor resets the
    device (only if it reports VFIO_DEVICE_FLAGS_RESET), and a valid restore then works."""
    hook.write(device, 951)
    blob = CloudHypervisor(device, profile).snapshot()
    ch = CloudHypervisor(peer_device, profile, vc_context.kernel_release)
    code = ch.transition(S.RESUMING, S.STOP)
    expect(code == 0, "fsm.legal-arc", f"SET RESUMING failed {errno_name(code)} | {ch.where()}", peer_device)
    code, n = ch.try_write_blob(blob, bytes(4096))
    ch.log.append(f"write({len(blob) + 4096}): {errno_name(code)}, {n}")
    if code or n != len(blob) + 4096:
        ch.reset_and_rearm()                     # load_migration_data: a failed write resets
    else:
        code = ch.transition(S.RUNNING, None)    # resume(): no recover state, reset on failure
        expect(code != 0, "resume.hostile-stream-refused",
               f"a blob with 4096 extra bytes was accepted | {ch.where()}", peer_device)
    if not ch.has_reset_flag():
        expect(False, "device.reset-flag-advertised",
               "the device does not report VFIO_DEVICE_FLAGS_RESET, so cloud-hypervisor skipped the "
               f"reset and left it in {MigState.label(peer_device.get_state_raw()[1])}", peer_device)
        not_supported(f"{peer_device.name} does not report VFIO_DEVICE_FLAGS_RESET: "
                    "cloud-hypervisor's recovery (vfio-ioctls) cannot reset it")
    expect_running(ch, "reset.returns-running", "after cloud-hypervisor's recovery reset")
    CloudHypervisor(peer_device, profile).restore(blob)
    verify_arrived(hook, peer_device, 951, "reset.device-usable", "peer restored after the recovery")
