"""The one import of a suite author: `from vfio_conform.api import expect, MigState, not_supported, ...`.

Everything a suite under suites/ needs, re-exported from the layers that define it (the suite
library, the uAPI tables, the model, the device interface, the fixtures' sessions). Suites import
this module only; fixtures and the suite library itself may import deeper. The random-walk driver
(`WalkContext`, `run_walks`) loads Hypothesis, so it is imported on first use, not with this module.
"""
from __future__ import annotations

# Checks: a rule broken is a SpecViolation; expect() and friends raise it
from ..suitelib.checks import expect, expect_errno, expect_state, read_state  # noqa: F401
from ..base.errors import errno_name, SpecViolation  # noqa: F401
# Typed skips: a test that cannot run on this device says why (an outcome, never a pass)
from ..results.outcomes import gated, not_supported  # noqa: F401
# The uAPI as data, and the model of what a device must do
from ..uapi import structs  # noqa: F401
from ..uapi.enums import DeviceFlag, Feature, FeatureOp, MIG_STATE_NR, MigFlag, MigState, PciRegion, RegionCap, RegionFlag  # noqa: F401
from ..model.fsm import PRE_COPY_STATES, SAVING_GROUP, supported_states  # noqa: F401
from ..model.plan import plan  # noqa: F401
from ..model.spec import MESSAGES  # noqa: F401
# The device interface and opening devices
from ..device import PRECOPY_INFO_REINIT, PRECOPY_INFO_V2  # noqa: F401
from ..device.digest import new_digest  # noqa: F401
from ..backends import registry  # noqa: F401
from ..backends.registry import open_device  # noqa: F401
from ..verify import hook_for, verifier_for  # noqa: F401
# Sessions of the `device`/`peer_device` fixtures
from ..fixtures.sessions import REQUESTABLE_STATES, require_state, rewound, Sessions, write_file  # noqa: F401
# Helpers of the suite library: streams, saved streams on disk, write plans, virtualized config space, FLR, the v1 driver, consumer sequences
from ..suitelib.depth import dma  # noqa: F401
from ..suitelib.depth.streams import foreign_stream, resume, save_stream  # noqa: F401
from ..suitelib.spill import cut, extended, flipped, Mutated, SavedStream  # noqa: F401
from ..suitelib.writeplan import bounded, combined, read_along  # noqa: F401
from ..suitelib.virtualized import masked, virtualized_ranges  # noqa: F401
from ..suitelib.fences import (ACCESS_WIDTHS, config_widths, exact_width, granted, need, read_by, read_span, window, write_by, write_span)  # noqa: F401
from ..suitelib.flr import flr_capability, initiate_flr  # noqa: F401
from ..suitelib.migration_v1 import FIELDS, find_region, HEADER_LEN, LEGAL_STATES, RUNNING, V1Migration  # noqa: F401
from ..suitelib.consumers import CloudHypervisor, expect_running, Qemu, Saved, verify_arrived  # noqa: F401

#: Names loaded on first use (module -> names): the walk driver imports Hypothesis.
_LAZY = {'WalkContext': 'suitelib.depth.walk', 'run_walks': 'suitelib.depth.walk'}

__all__ = [
    'ACCESS_WIDTHS', 'bounded', 'CloudHypervisor', 'combined', 'config_widths', 'cut', 'DeviceFlag',
    'dma', 'errno_name', 'exact_width', 'expect', 'expect_errno', 'expect_running', 'expect_state',
    'extended', 'Feature', 'FeatureOp', 'FIELDS', 'find_region', 'flipped', 'flr_capability',
    'foreign_stream', 'gated', 'granted', 'HEADER_LEN', 'hook_for', 'initiate_flr', 'LEGAL_STATES',
    'masked', 'MESSAGES', 'MIG_STATE_NR', 'MigFlag', 'MigState', 'Mutated', 'need', 'new_digest',
    'not_supported', 'open_device', 'PciRegion', 'plan', 'PRE_COPY_STATES', 'PRECOPY_INFO_REINIT',
    'PRECOPY_INFO_V2', 'Qemu', 'read_along', 'read_by', 'read_span', 'read_state', 'RegionCap',
    'RegionFlag', 'registry', 'REQUESTABLE_STATES', 'require_state', 'resume', 'rewound', 'run_walks',
    'RUNNING', 'save_stream', 'Saved', 'SavedStream', 'SAVING_GROUP', 'Sessions', 'SpecViolation',
    'structs', 'supported_states', 'V1Migration', 'verifier_for', 'verify_arrived',
    'virtualized_ranges', 'WalkContext', 'window', 'write_by', 'write_file', 'write_span',
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f"vfio_conform.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
