"""The profile's `sim:` section as a validated, typed config (every key optional)."""
from __future__ import annotations

import dataclasses
import zlib
from typing import Any, Mapping

from .faults import ActiveFaults
from .regions import RegionSpec, build_specs

#: Migration flag sets the sim accepts (0 = no migration support: the features give ENOTTY).
VALID_FLAGS = (0, 1, 3, 5, 7)
PRECOPY_ENDS = ("enomsg", "zero")


@dataclasses.dataclass(frozen=True)
class SimConfig:
    """Args:
        flags: VFIO_MIGRATION_* bits the device reports and implements.
        state_size: bytes of internal device state migrated before the region contents.
        precopy_bytes: payload bytes offered as initial data in PRE_COPY (clamped to the payload).
        precopy_end: 'enomsg' (spec) or 'zero' (mtty) at the temporary end of pre-copy data.
        reset_supported: DEVICE_INFO has RESET and VFIO_DEVICE_RESET works (else EINVAL).
        dma_logging: DMA logging features accepted (else ENOTTY).
        seed: content seed (default: crc32 of the device id).
        regions: region specs (defaults with overrides applied).
        faults: the `{name, **params}` fault entries.
    """

    flags: int = 7
    state_size: int = 8192
    precopy_bytes: int = 2048
    precopy_end: str = "enomsg"
    reset_supported: bool = True
    dma_logging: bool = False
    seed: int | None = None
    regions: tuple[RegionSpec, ...] = dataclasses.field(default_factory=lambda: tuple(build_specs(None)))
    faults: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "SimConfig":
        """Validate a profile's `sim:` mapping (ValueError names the bad key)."""
        data = dict(data or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown sim config key(s) {unknown} (known: {', '.join(sorted(known))})")
        cfg = cls(
            flags=_int(data, "flags", 7), state_size=_int(data, "state_size", 8192),
            precopy_bytes=_int(data, "precopy_bytes", 2048),
            precopy_end=data.get("precopy_end", "enomsg"),
            reset_supported=_bool(data, "reset_supported", True),
            dma_logging=_bool(data, "dma_logging", False),
            seed=_int(data, "seed", None),
            regions=tuple(build_specs(data.get("regions"))),
            faults=tuple(data.get("faults") or ()),
        )
        if cfg.flags not in VALID_FLAGS:
            raise ValueError(f"sim flags {cfg.flags:#x} not one of {VALID_FLAGS}")
        if cfg.precopy_end not in PRECOPY_ENDS:
            raise ValueError(f"sim precopy_end {cfg.precopy_end!r} not one of {PRECOPY_ENDS}")
        ActiveFaults(cfg.faults)          # validate names and params now
        return cfg

    def seed_for(self, device_id: str) -> int:
        return self.seed if self.seed is not None else zlib.crc32(device_id.encode())


def _int(data: Mapping[str, Any], key: str, default: int | None) -> int | None:
    value = data.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"sim {key}: expected a non-negative integer, got {value!r}")
    return value


def _bool(data: Mapping[str, Any], key: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"sim {key}: expected true or false, got {value!r}")
    return value
