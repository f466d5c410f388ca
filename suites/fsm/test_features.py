"""VFIO_DEVICE_FEATURE on a device without migration or without DMA logging: ENOTTY (vfio_main.c).

The core answers the migration features (1, 2, 9) with ENOTTY when the driver has no mig_ops, and
the DMA logging features (6, 7, 8) with ENOTTY when it has no log_ops, before looking at the
arguments; PROBE gives the same answer. Which of the two a device has is what its profile declares.
"""
import errno

import pytest

from vfio_conform.api import expect_errno, Feature, FeatureOp, not_supported

pytestmark = pytest.mark.vc_protocol("any")

_GET, _SET, _PROBE = FeatureOp.GET, FeatureOp.SET, FeatureOp.PROBE
#: (feature, op, payload bytes) of each request; payloads are the right size and all zero.
MIGRATION_REQUESTS = [(Feature.MIGRATION, _GET, 8), (Feature.MIG_DEVICE_STATE, _GET, 8),
                      (Feature.MIG_DEVICE_STATE, _SET, 8), (Feature.MIG_DATA_SIZE, _GET, 8)]
LOGGING_REQUESTS = [(Feature.DMA_LOGGING_START, _SET, 24), (Feature.DMA_LOGGING_STOP, _SET, 0),
                    (Feature.DMA_LOGGING_REPORT, _GET, 32)]


@pytest.fixture
def opened(device_pool, profile):
    """The profile's first device as opened (no migration state needed: it may have no migration)."""
    return device_pool.get(profile, 0)


def _all_enotty(device, requests, rule: str) -> None:
    for feature, op, size in requests:
        for flags in (op, _PROBE | op):
            code, _ = device.try_feature(feature, flags, bytes(size))
            expect_errno(code, errno.ENOTTY, rule, f"VFIO_DEVICE_FEATURE({feature.name}, {FeatureOp(flags)!r})",
                         device)


@pytest.mark.vc_spec("feature.mig-enotty-without-mig-ops")
def test_migration_features_enotty_without_migration(opened, profile):
    """A device whose profile declares no v2 migration answers features 1, 2 and 9 with ENOTTY."""
    if profile.protocol == "v2":
        not_supported(f"profile {profile.name} declares v2 migration (the device has mig_ops)")
    _all_enotty(opened, MIGRATION_REQUESTS, "feature.mig-enotty-without-mig-ops")


@pytest.mark.vc_spec("feature.log-enotty-without-log-ops")
def test_logging_features_enotty_without_logging(opened, profile):
    """A device whose profile declares no DMA logging answers features 6, 7 and 8 with ENOTTY."""
    if profile.dma_logging:
        not_supported(f"profile {profile.name} declares DMA logging (the device has log_ops)")
    _all_enotty(opened, LOGGING_REQUESTS, "feature.log-enotty-without-log-ops")
