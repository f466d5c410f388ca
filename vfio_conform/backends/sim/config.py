"""The profile's `backend_config.sim` section as a validated, typed config (every key optional)."""
from __future__ import annotations

import dataclasses
import zlib
from typing import Any, Mapping

from ...base.errors import shown
from .faults import ActiveFaults
from .regions import RegionSpec, build_specs
from .v1 import V1Config

#: Migration flag sets the sim accepts (0 = no migration support: the features give ENOTTY).
VALID_FLAGS = (0, 1, 3, 5, 7)
PRECOPY_ENDS = ("enomsg", "zero")


#: A state above this many bytes is generated on the fly unless `generated_state: false`.
GENERATED_ABOVE = 16 << 20
#: The largest device state a sim profile may ask for: 1 TiB (the bench uses 4 GiB, big-state work
#: 8 GiB; a state above GENERATED_ABOVE is generated and streamed, never held in memory). Anything
#: larger is a typo, and 2**62 would make every test a MemoryError.
MAX_STATE_SIZE = 1 << 40
#: Sim config integers with an upper bound below 2**64.
SIZE_CAPS = {"state_size": MAX_STATE_SIZE}
#: Fault knobs that bend the byte-held stream sessions (or their resume) and that a generated
#: state's sessions do not implement: refused with generated_state rather than silently inert.
GENERATED_WITHOUT = frozenset({
    "enomsg_in_stop_copy", "header_checked_only_on_write",
    "live_read_eio", "precopy_dirty_stuck", "precopy_end_eof", "precopy_initial_grows",
    "precopy_stale_snapshot", "stop_copy_eof_not_readable",
    "truncated_stream", "foreign_layout_accepted", "reset_breaks_save", "reset_keeps_resume_data",
    "no_fd_on_opening_arc", "accept_incomplete_resume", "resume_refuses_valid_stream",
    "resume_skips_regions", "seekable_fd"})


@dataclasses.dataclass(frozen=True)
class SimConfig:
    """Args:
        flags: VFIO_MIGRATION_* bits the device reports and implements.
        state_size: bytes of internal device state migrated before the region contents.
        precopy_bytes: payload bytes offered as initial data in PRE_COPY (clamped to the payload).
        precopy_end: 'enomsg' (spec) or 'zero' (mtty) at the temporary end of pre-copy data.
        reset_supported: DEVICE_INFO has RESET and VFIO_DEVICE_RESET works (else EINVAL).
        dma_logging: DMA logging features accepted (else ENOTTY).
        precopy_info_v2: offer VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 (12, newer than 6.12) when
            PRE_COPY is reported: after the opt-in PRECOPY_INFO flags are output only (REINIT).
        data_size_report: what MIG_DATA_SIZE reports, in bytes (None: the exact STOP_COPY stream
            length). A fixed value models a driver that reports a bound or a firmware estimate
            (pds: PDS_LM_DEVICE_STATE_LENGTH whatever the stream; mlx5: the firmware's size).
        pcie_flr: config space has a PCI Express capability offering Function Level Reset
            (Device Control bit 15 resets the function: RUNNING, sessions ended).
        seed: content seed (default: crc32 of the device id).
        regions: region specs (defaults with overrides applied).
        faults: the `{name, **params}` fault entries.
        v1: the legacy v1 migration region (None: none); use with flags 0 for a v1-only device.
        per_device: device id -> sim keys overriding the above for that instance.
        generated_state: generate the internal state block by block instead of holding it (any
            size, e.g. 4 GiB; default: on above 16 MiB). Its stream is records of 1 MiB blocks.
        dirty_blocks: generated state: 1 MiB blocks the device dirties per pre-copy round.
    """

    flags: int = 7
    state_size: int = 8192
    precopy_bytes: int = 2048
    precopy_end: str = "enomsg"
    reset_supported: bool = True
    dma_logging: bool = False
    precopy_info_v2: bool = True
    data_size_report: int | None = None
    pcie_flr: bool = False
    seed: int | None = None
    regions: tuple[RegionSpec, ...] = dataclasses.field(default_factory=lambda: tuple(build_specs(None)))
    faults: tuple[Mapping[str, Any], ...] = ()
    v1: V1Config | None = None
    per_device: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    generated_state: bool = False
    dirty_blocks: int = 2

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, device_id: str | None = None) -> "SimConfig":
        """Validate a profile's `backend_config.sim` mapping, with `device_id`'s per_device overrides applied."""
        data = dict(data or {})
        per_device = data.get("per_device") or {}
        if not isinstance(per_device, Mapping) or not all(isinstance(v, Mapping) for v in per_device.values()):
            raise ValueError("sim per_device: expected {device id: {sim keys...}}")
        for dev, override in per_device.items():
            if "per_device" in override:
                raise ValueError(f"sim per_device.{dev}: cannot nest per_device")
            if dev != device_id:
                cls.from_dict({**data, **override, "per_device": {}})      # validate now
        if device_id in per_device:
            data = {**data, **per_device[device_id]}
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
            precopy_info_v2=_bool(data, "precopy_info_v2", True),
            data_size_report=_int(data, "data_size_report", None),
            pcie_flr=_bool(data, "pcie_flr", False),
            seed=_int(data, "seed", None),
            regions=tuple(build_specs(data.get("regions"))),
            faults=tuple(data.get("faults") or ()),
            v1=V1Config.from_dict(data["v1"]) if data.get("v1") is not None else None,
            per_device=dict(per_device),
            generated_state=_bool(data, "generated_state", _int(data, "state_size", 8192) > GENERATED_ABOVE),
            dirty_blocks=_int(data, "dirty_blocks", 2),
        )
        if cfg.generated_state and cfg.v1 is not None:
            raise ValueError("sim generated_state: not with a v1 migration region")
        inert = sorted({f.get("name") for f in cfg.faults if isinstance(f, Mapping)} & GENERATED_WITHOUT)
        if cfg.generated_state and inert:
            raise ValueError(f"sim generated_state: the fault knob(s) {inert} need a state held as bytes "
                             f"(set generated_state: false, or a state_size up to {GENERATED_ABOVE})")
        if cfg.v1 is not None:
            cfg = dataclasses.replace(cfg, regions=_with_region(cfg.regions, cfg.v1.spec()))
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
        raise ValueError(f"sim {key}: expected a non-negative integer, got {shown(value)}")
    cap = SIZE_CAPS.get(key)
    if cap is not None and value > cap:
        raise ValueError(f"sim {key}: {shown(value)} is more than the sim's limit of {cap} bytes "
                         f"({cap >> 40} TiB)")
    if value >= 1 << 64:
        raise ValueError(f"sim {key}: {shown(value)} does not fit in 64 bits")
    return value


def _bool(data: Mapping[str, Any], key: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"sim {key}: expected true or false, got {value!r}")
    return value


def _with_region(specs: tuple[RegionSpec, ...], spec: RegionSpec) -> tuple[RegionSpec, ...]:
    """`specs` with `spec` placed at its index (gaps become empty regions)."""
    out = list(specs) + [RegionSpec(i) for i in range(len(specs), spec.index + 1)]
    out[spec.index] = spec
    return tuple(out)
