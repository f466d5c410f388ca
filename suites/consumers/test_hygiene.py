"""The uAPI hygiene the consumers rely on: feature PROBE answers (QEMU decides from the
DMA_LOGGING_START probe whether it can track dirty pages), unsupported ops and bad argsz refused,
GET_REGION_INFO argument checks and capability sizing, VFIO_DEVICE_FLAGS_RESET against the profile."""
import errno

import pytest

from vfio_conform.api import (DeviceFlag, errno_name, expect, expect_errno, Feature, FeatureOp, MigFlag,
                               not_supported, RegionFlag)

GET, SET, PROBE = FeatureOp.GET, FeatureOp.SET, FeatureOp.PROBE
#: feature -> the ops it supports (vfio_main.c, vfio-uapi.md 2).
MIGRATION_FEATURES = {Feature.MIGRATION: GET, Feature.MIG_DEVICE_STATE: GET | SET, Feature.MIG_DATA_SIZE: GET}
LOGGING_FEATURES = {Feature.DMA_LOGGING_START: SET, Feature.DMA_LOGGING_STOP: SET,
                    Feature.DMA_LOGGING_REPORT: GET}
ANY = pytest.mark.vc_protocol("any")
#: VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 (2026 series): SET, no payload (vfio-uapi.md 4.7).
PRECOPY_INFO_V2 = 12


def _claimed(profile, device=None) -> dict:
    """The features the profile says the device offers, less those its transport does not define
    (vfio-user has no MIG_DATA_SIZE: transport.not_offered_features)."""
    out = dict(MIGRATION_FEATURES) if profile.protocol == "v2" else {}
    if profile.dma_logging:
        out.update(LOGGING_FEATURES)
    absent = getattr(getattr(device, "transport", None), "not_offered_features", {})
    return {f: ops for f, ops in out.items() if int(f) not in absent}


@ANY
@pytest.mark.vc_spec("feature.probe-claimed")
def test_consumer_hygiene_feature_probe(idle_device, profile):
    """PROBE (alone, as QEMU probes DMA_LOGGING_START, and with the op bits) answers 0 for every
    feature the device offers; the DMA logging probes fail where the profile declares none."""
    bad = []
    for feature, ops in _claimed(profile, idle_device).items():
        for flags in (PROBE, PROBE | ops):
            code, _ = idle_device.try_feature(feature, flags)
            if code:
                bad.append(f"PROBE {feature.name} ({FeatureOp(flags)!r}): {errno_name(code)}")
    expect(not bad, "feature.probe-claimed", "; ".join(bad), idle_device)
    if not profile.dma_logging:
        for feature in LOGGING_FEATURES:
            code, _ = idle_device.try_feature(feature, PROBE)
            expect(code != 0, "feature.probe-matches-profile",
                   f"PROBE {feature.name} succeeds but profile {profile.name} declares no DMA logging "
                   "(QEMU and cloud-hypervisor would start it)", idle_device)
    if profile.protocol == "v2" and profile.flags & MigFlag.PRE_COPY:
        code, _ = idle_device.try_feature(PRECOPY_INFO_V2, SET)     # as QEMU's opt-in does
        expect(code in (0, errno.ENOTTY), "feature.unknown-enotty",
               f"SET feature {PRECOPY_INFO_V2} (PRECOPY_INFOv2) gives {errno_name(code)}, not ENOTTY: "
               "QEMU with the PRECOPY_INFOv2 series fails migration setup on this device", idle_device)


@ANY
@pytest.mark.vc_spec("feature.unsupported-op-fails")
def test_consumer_hygiene_unsupported_op(idle_device, profile):
    """SET on a GET-only feature, GET on a SET-only one, and PROBE with such an op: EINVAL."""
    claimed = _claimed(profile, idle_device)
    cases = [(f, op) for f, ops in claimed.items() if ops != GET | SET for op in (GET, SET) if not op & ops]
    if not cases:
        not_supported(f"profile {profile.name} offers no GET-only or SET-only feature")
    for feature, op in cases:
        for flags in (op, PROBE | op):
            code, _ = idle_device.try_feature(feature, flags, payload=bytes(32))
            expect_errno(code, errno.EINVAL, "feature.unsupported-op-fails",
                         f"VFIO_DEVICE_FEATURE {feature.name} with {FeatureOp(flags)!r}", idle_device)


@ANY
@pytest.mark.vc_spec("feature.bad-argsz-fails")
def test_consumer_hygiene_feature_argsz(idle_device, profile):
    """argsz below the 8-byte header fails for any feature; below header + payload for a GET fails."""
    for argsz in (0, 4, 7):
        code, _ = idle_device.try_feature(Feature.MIGRATION, GET, argsz=argsz, out_size=8)
        expect_errno(code, errno.EINVAL, "feature.bad-argsz-fails", f"GET MIGRATION with argsz {argsz}",
                     idle_device)
    if profile.protocol == "v2":
        for feature, argsz in ((Feature.MIGRATION, 8), (Feature.MIG_DATA_SIZE, 12)):
            if feature not in _claimed(profile, idle_device):
                continue
            code, _ = idle_device.try_feature(feature, GET, argsz=argsz, out_size=8)
            expect_errno(code, errno.EINVAL, "feature.bad-argsz-fails",
                         f"GET {feature.name} with argsz {argsz} (payload needs 8 bytes)", idle_device)


@ANY
@pytest.mark.vc_spec("region-info.bad-args-fail")
def test_consumer_hygiene_region_info_args(idle_device, profile):
    """GET_REGION_INFO: argsz below 32 and an index past num_regions fail with EINVAL."""
    info = idle_device.info()             # also primes mtty's saved num_irqs (vfio-uapi.md 7.3)
    code, _ = idle_device.try_region_info(info.num_regions)
    expect_errno(code, errno.EINVAL, "region-info.bad-args-fail",
                 f"GET_REGION_INFO index {info.num_regions} (num_regions {info.num_regions})", idle_device)
    for argsz in (4, 16, 31):       # (Device.try_region_info treats argsz 0 as "default")
        code, _ = idle_device.try_region_info(0, argsz=argsz)
        expect_errno(code, errno.EINVAL, "region-info.bad-args-fail", f"GET_REGION_INFO argsz {argsz}",
                     idle_device)


@ANY
@pytest.mark.vc_spec("region-info.caps-argsz")
def test_consumer_hygiene_region_info_caps(idle_device, profile):
    """With argsz 32 a region with a capability chain reports CAPS, cap_offset 0 and the argsz needed."""
    num = idle_device.info().num_regions
    with_caps = []
    for index in range(num):
        code, full = idle_device.try_region_info(index)
        if code == 0 and full.flags & RegionFlag.CAPS:
            with_caps.append(full)
    if not with_caps:
        not_supported(f"no region of {idle_device.name} carries a capability chain")
    for full in with_caps:
        code, small = idle_device.try_region_info(full.index, argsz=32)
        expect_errno(code, 0, "region-info.caps-argsz", f"GET_REGION_INFO({full.index}) argsz 32", idle_device)
        cap_offset = int.from_bytes(small.raw[12:16], "little")
        expect(small.flags & RegionFlag.CAPS and cap_offset == 0 and small.argsz >= full.argsz > 32,
               "region-info.caps-argsz",
               f"region {full.index} with argsz 32: flags {int(small.flags):#x}, cap_offset {cap_offset}, "
               f"argsz {small.argsz} (the chain needs {full.argsz})", idle_device)


@pytest.mark.vc_spec("device.reset-flag-matches-profile")
def test_consumer_hygiene_reset_flag(device, profile):
    """VFIO_DEVICE_FLAGS_RESET: set -> VFIO_DEVICE_RESET works and the profile allows reset; absent
    on a device whose reset works -> a 'should' (cloud-hypervisor then never resets it)."""
    has_flag = bool(device.info().flags & DeviceFlag.RESET)
    expect(profile.reset or not has_flag, "device.reset-flag-matches-profile",
           f"the device reports VFIO_DEVICE_FLAGS_RESET; profile {profile.name} says features.reset: false",
           device)
    if has_flag:
        expect_errno(device.try_reset(), 0, "device.reset-flag-works",
                     "VFIO_DEVICE_RESET on a device reporting VFIO_DEVICE_FLAGS_RESET", device)
    elif profile.reset:
        expect_errno(device.try_reset(), 0, "reset.returns-running",
                     f"VFIO_DEVICE_RESET (profile {profile.name} declares features.reset)", device)
        expect(False, "device.reset-flag-advertised", "VFIO_DEVICE_RESET works but DEVICE_INFO lacks "
               "VFIO_DEVICE_FLAGS_RESET: cloud-hypervisor's recovery skips the reset", device)
