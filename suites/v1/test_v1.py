"""The legacy v1 migration region (vfio.h 5.8-5.17): header, device_state bits, save and resume loops,
mmap vs slow path, and a destination data section smaller than the source's chunks.
"""

import pytest

from vfio_conform.api import (errno_name, expect, FIELDS, find_region, HEADER_LEN, LEGAL_STATES,
                               not_supported, RUNNING, SpecViolation, V1Migration)

pytestmark = pytest.mark.vc_protocol("v1")
STARTS = (0b000, 0b001, 0b010, 0b011, 0b100)


def v1(device, use_mmap: bool = True) -> V1Migration:
    info = find_region(device)
    expect(info is not None, "protocol.matches-profile",
           "no region with TYPE cap (3, 1) on a v1 profile", device)
    return V1Migration(device, info, use_mmap)


@pytest.mark.vc_spec("v1.header-layout")
def test_v1_header_layout(any_device, profile):
    """32-byte header at offset 0: RUNNING by default, reserved 0, data_offset past it and inside."""
    mig = v1(any_device)
    expect(mig.info.size > HEADER_LEN, "v1.header-layout",
           f"migration region is {mig.info.size} bytes", any_device)
    expect(mig.state() == RUNNING, "v1.header-layout", f"device_state {mig.state():03b}, expected 001",
           any_device)
    expect(mig.read("reserved") == 0, "v1.header-layout",
           f"reserved reads {mig.read('reserved'):#x}, expected 0", any_device)
    offset = mig.read("data_offset")
    expect(HEADER_LEN <= offset < mig.info.size, "v1.header-layout",
           f"data_offset {offset:#x} not in [{HEADER_LEN}, {mig.info.size:#x})", any_device)
    expect(mig.read("pending_bytes") == 0, "v1.header-layout",
           "pending_bytes is non-zero while not saving", any_device)


@pytest.mark.vc_spec("v1.native-width")
def test_v1_fields_need_native_width(any_device, profile):
    """A 1-byte access to a wider field should fail (a 'should' in vfio.h: a warning)."""
    mig = v1(any_device)
    accepted = []
    for name, (off, _width) in FIELDS.items():
        code, _ = any_device.try_region_read(mig.info.index, off + 1, 1, mig.info)
        if not code:
            accepted.append(f"{name}+1")
    expect(not accepted, "v1.native-width",
           f"1-byte reads inside {', '.join(accepted)} succeeded", any_device)


@pytest.mark.vc_spec("v1.state-bits")
@pytest.mark.parametrize("start", STARTS, ids=[f"from{s:03b}" for s in STARTS])
def test_v1_state_bits(any_device, profile, start):
    """From `start`, every legal value is accepted and reads back; 101/110/111 fail, state unchanged."""
    mig = v1(any_device)
    for value in range(8):
        if start == 0b100 and value not in (0b100, 0b101, 0b110, 0b111):
            continue                      # leaving RESUMING commits the (empty) stream: not a bits test
        _enter(any_device, mig, start)
        code = mig.try_set_raw(value)
        now = mig.state()
        if value in LEGAL_STATES:
            expect(code == 0 and now == value, "v1.state-bits",
                   f"{start:03b} -> {value:03b}: {errno_name(code)}, device_state now {now:03b}", any_device)
        else:
            expect(code != 0, "v1.state-bits", f"invalid {start:03b} -> {value:03b} was accepted", any_device)
            expect(now == start, "v1.state-bits",
                   f"rejected {start:03b} -> {value:03b} left device_state {now:03b}", any_device)


def _enter(device, mig, state: int) -> None:
    device.reset()
    if state != RUNNING:
        code = mig.try_set_raw(state)
        expect(code == 0, "v1.state-bits", f"001 -> {state:03b}: {errno_name(code)}", device)


@pytest.mark.vc_spec("v1.save-loop")
def test_v1_save_loop(any_device, profile, spill_file):
    """Pre-copy then stop-and-copy until pending_bytes is 0: a non-empty stream, device stopped."""
    mig = v1(any_device)
    saved = mig.save(spill_file, precopy=True)
    expect(saved.length > 0 and saved.length == spill_file.tell(), "v1.save-loop",
           f"saved {saved.length} bytes in {len(saved.chunks)} chunks", any_device)
    expect(mig.state() == 0 and mig.read("pending_bytes") == 0, "v1.save-loop",
           f"after saving: device_state {mig.state():03b}", any_device)


@pytest.mark.vc_spec("v1.resume-loop")
def test_v1_resume_loop(any_device, any_peer, profile, spill_file, tmp_path):
    """The destination loads the source's chunks and re-saves the identical stream."""
    _migrate_and_compare(any_device, any_peer, spill_file, tmp_path, "v1.resume-loop")


@pytest.mark.vc_spec("v1.mmap-slow-identical")
def test_v1_mmap_and_slow_path_identical(any_device, profile, spill_file):
    """The stopped device saved through the mmapped data section and through pread: same bytes."""
    mig = v1(any_device)
    if not mig.use_mmap:
        not_supported("the migration region has no sparse-mmap area (slow path only)")
    mig.set_state(~RUNNING, 0)
    fast = mig.save(spill_file, precopy=False)
    slow = V1Migration(any_device, mig.info, use_mmap=False).save(spill_file, precopy=False)
    expect((fast.length, fast.sha256) == (slow.length, slow.sha256), "v1.mmap-slow-identical",
           f"mmap path: {fast.length} bytes sha256 {fast.sha256[:16]}; slow path: {slow.length} bytes "
           f"sha256 {slow.sha256[:16]}", any_device)


@pytest.mark.vc_spec("v1.short-chunks-accepted")
def test_v1_smaller_destination_loads_whole_stream(any_device, any_peer, profile, spill_file, tmp_path):
    """Chunks larger than the destination's data section are split into region-sized writes."""
    src, dst = v1(any_device), v1(any_peer)
    room = dst.info.size - dst.read("data_offset")
    spill_file.seek(0)
    saved = src.save(spill_file)
    if max(saved.chunks) <= room:
        not_supported(f"destination data section ({room} bytes) holds the source's "
                    f"largest chunk ({max(saved.chunks)} bytes)")
    any_device.reset()
    try:                      # the resume loop's own checks are musts; their failure here is the should's
        _migrate_and_compare(any_device, any_peer, spill_file, tmp_path, "v1.resume-loop")
    except SpecViolation as exc:
        expect(False, "v1.short-chunks-accepted",
               f"destination data section {room} bytes, source chunks up to {max(saved.chunks)}: "
               f"{exc.message}", any_peer)


def _migrate_and_compare(source, dest, spill_file, tmp_path, rule: str) -> None:
    src, dst = v1(source), v1(dest)
    spill_file.seek(0)
    spill_file.truncate()
    saved = src.save(spill_file)
    spill_file.seek(0)
    code = dst.resume(spill_file, saved.chunks, rule)
    expect(code == 0, rule, f"leaving RESUMING after {saved.length} bytes in {len(saved.chunks)} chunks "
                            f"failed with {errno_name(code)}", dest)
    with open(tmp_path / "resaved", "w+b") as again_file:
        again = dst.save(again_file, precopy=False)
    expect((again.length, again.sha256) == (saved.length, saved.sha256), rule,
           f"destination re-saves {again.length} bytes sha256 {again.sha256[:16]}, source saved "
           f"{saved.length} bytes sha256 {saved.sha256[:16]}", dest)
