"""Protocol detection against the profile, and source/destination region layouts before migrating."""
import pytest

from vfio_conform.api import errno_name, expect, find_region, MigState, not_supported

pytestmark = pytest.mark.vc_protocol("any")


def layout(device) -> dict[int, tuple[int, int]]:
    """index -> (size, flags) of every region the device reports."""
    out = {}
    for index in range(device.info().num_regions):
        code, info = device.try_region_info(index)
        out[index] = (info.size, int(info.flags)) if not code else (-1, code)
    return out


def layout_diff(a, b) -> list[str]:
    return [f"region {i}: {a.get(i)} vs {b.get(i)} (size, flags)"
            for i in sorted(set(a) | set(b)) if a.get(i) != b.get(i)]


@pytest.mark.vc_spec("protocol.matches-profile")
def test_protocol_matches_profile(any_device, profile):
    """v1 = a region with TYPE cap (3, 1); v2 = the MIGRATION feature; exactly the declared one."""
    v1 = find_region(any_device) is not None
    v2 = any_device.try_migration_flags()[0] == 0
    found = {(True, False): "v1", (False, True): "v2"}.get((v1, v2), "both" if v1 else "none")
    expect(found == profile.protocol, "protocol.matches-profile",
           f"device speaks {found} (v1 region: {v1}, MIGRATION feature: {v2}); {profile.path} "
           f"declares migration.protocol: {profile.protocol}", any_device)


@pytest.mark.vc_spec("region.peer-layout-declared")
def test_peer_layout_declared(any_device, any_peer, profile):
    """Before migrating, compare the region layouts of source and destination (regions.peer_layout)."""
    diff = layout_diff(layout(any_device), layout(any_peer))
    if profile.regions.peer_layout == "same":
        expect(not diff, "region.peer-layout-declared",
               f"{any_device.name} and {any_peer.name} differ: {'; '.join(diff)}", any_device)
    else:
        expect(bool(diff), "region.peer-layout-declared",
               f"profile declares peer_layout: different but {any_device.name} and {any_peer.name} "
               f"have the same layout", any_device)


@pytest.mark.vc_spec("mismatch.resume-refused")
@pytest.mark.vc_protocol("v2")
def test_resume_from_other_layout_refused(any_device, any_peer, profile, sessions, spill_file):
    """A stream saved by a device with a different region layout must not load on the destination."""
    diff = layout_diff(layout(any_device), layout(any_peer))
    if not diff:
        not_supported("source and destination have the same region layout")
    sessions.save(any_device, spill_file)
    fd = sessions.enter(any_peer, MigState.RESUMING, prime=False)
    spill_file.seek(0)
    write_errors = []
    while chunk := spill_file.read(1 << 20):
        code, _ = fd.try_write(chunk)
        if code:
            write_errors.append(errno_name(code))
            break
    result = any_peer.try_set_state(MigState.STOP)
    expect(bool(write_errors) or result.errno != 0, "mismatch.resume-refused",
           f"stream of {any_device.name} ({'; '.join(diff)}) loaded into {any_peer.name}: every write and "
           f"RESUMING->STOP succeeded", any_peer)
