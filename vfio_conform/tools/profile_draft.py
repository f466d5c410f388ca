"""`vfio-conform profile new`: a draft profile written from what a live device answers.

The probe only asks: DEVICE_GET_INFO, GET_REGION_INFO (with its capability chain), GET of the
MIGRATION feature and PROBE of the other migration and DMA logging features. It never SETs a
migration state, never reads or writes a region (BARs, config space) and never resets the device,
so a device is left exactly as it was found. PRE_COPY's PRECOPY_INFO is an ioctl on a pre-copy
data fd: reaching one needs a state change, so it is not probed (vfio.h requires it of every
PRE_COPY device).

What the device cannot say (which regions are safe to touch, hazards, waivers, timeouts, a
verification hook) is guessed conservatively and every guess carries a `# REVIEW:` comment:
regions are declared `access: none` (the suites then only query their info), no hazard is
declared safe (every hazard arc is gated), and the known deviations recorded for the same driver
in a shipped profile are carried over with their links.

This module opens devices, so it sits in the tools layer although it lives beside the schema.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from pathlib import Path

from ..backends import registry
from ..device import Device
from ..base.errors import ConfigError, VfioConformError, errno_name
from ..results.outcomes import Outcome, OutcomeSkip
from ..targets.select import check_profile
from ..suitelib.virtualized import VirtualizedRange, virtualized_ranges
from ..uapi.enums import (REGION_SUBTYPE_MIGRATION_DEPRECATED, DeviceFlag, Feature, FeatureOp,
                          MigFlag, RegionCap, RegionFlag, RegionType)
from ..profile.loader import find_profile, load_all
from ..profile.matching import best_match
from ..profile.schema import REGION_NAMES, Migration, Profile, Timeouts, Walk, build_profile, region_name
from ..profile.yamlmarks import load_marked

REVIEW = "# REVIEW:"
_GET, _SET, _PROBE = FeatureOp.GET, FeatureOp.SET, FeatureOp.PROBE
#: (feature, op) pairs probed with VFIO_DEVICE_FEATURE_PROBE (never executed).
PROBES = ((Feature.MIG_DEVICE_STATE, _GET), (Feature.MIG_DEVICE_STATE, _SET),
          (Feature.MIG_DATA_SIZE, _GET), (Feature.DMA_LOGGING_START, _SET),
          (Feature.DMA_LOGGING_STOP, _SET), (Feature.DMA_LOGGING_REPORT, _GET))
#: the PROBE result of a feature the transport does not define (vfio-user has no MIG_DATA_SIZE):
#: no errno, none is made up
NOT_OFFERED = -1
MIGRATION_TYPE = (int(RegionType.MIGRATION_DEPRECATED), REGION_SUBTYPE_MIGRATION_DEPRECATED)


@dataclasses.dataclass(frozen=True)
class RegionProbe:
    """One region as GET_REGION_INFO reports it (errno != 0: the query failed)."""

    index: int
    errno: int = 0
    flags: RegionFlag = RegionFlag(0)
    size: int = 0
    caps: tuple[int, ...] = ()
    sparse_areas: tuple[tuple[int, int], ...] | None = None
    type: tuple[int, int] | None = None

    @property
    def v1_migration(self) -> bool:
        return self.type == MIGRATION_TYPE

    @property
    def mmappable(self) -> bool:
        return bool(self.flags & RegionFlag.MMAP)

    def layout(self) -> tuple[int, int]:
        """(size, flags), or (-1, errno): what source and destination are compared by."""
        return (self.size, int(self.flags)) if not self.errno else (-1, self.errno)


@dataclasses.dataclass(frozen=True)
class DeviceProbe:
    """Everything `probe_device` learnt, without changing the device."""

    name: str
    device_flags: DeviceFlag
    num_regions: int
    num_irqs: int
    migration_errno: int
    migration_flags: MigFlag
    features: tuple[tuple[Feature, FeatureOp, int], ...]      # (feature, op, PROBE errno or NOT_OFFERED)
    regions: tuple[RegionProbe, ...]
    #: ranges the reference driver answers read()/write() for itself (suitelib/virtualized.py)
    virtualized: tuple[VirtualizedRange, ...] = ()

    @property
    def v1_region(self) -> RegionProbe | None:
        return next((r for r in self.regions if r.v1_migration), None)

    @property
    def protocol(self) -> str:
        if self.migration_errno == 0:
            return "v2"
        return "v1" if self.v1_region is not None else "none"

    def answers(self, feature: Feature, op: FeatureOp) -> bool:
        return any(f == feature and o == op and code == 0 for f, o, code in self.features)

    def offered(self, feature: Feature, op: FeatureOp) -> bool:
        """False if the device's transport does not define `feature` at all."""
        return not any(f == feature and o == op and code == NOT_OFFERED for f, o, code in self.features)

    @property
    def dma_logging(self) -> bool:
        return self.answers(Feature.DMA_LOGGING_START, _SET) and self.answers(Feature.DMA_LOGGING_REPORT, _GET)

    def layout(self) -> dict[int, tuple[int, int]]:
        return {r.index: r.layout() for r in self.regions}


def _probe_feature(device: Device, feature: Feature, op: FeatureOp) -> int:
    """PROBE's errno, or NOT_OFFERED where the transport says the feature is not one of its own."""
    try:
        return device.probe_feature(feature, op)
    except OutcomeSkip as exc:
        if exc.outcome is not Outcome.NOT_SUPPORTED:
            raise
        return NOT_OFFERED


def probe_device(device: Device) -> DeviceProbe:
    """Query `device` read-only: device info, every region's info, MIGRATION GET, feature PROBEs."""
    info = device.info()
    code, flags = device.try_migration_flags()
    features = tuple((f, op, _probe_feature(device, f, op)) for f, op in PROBES)
    regions = []
    for index in range(info.num_regions):
        err, region = device.try_region_info(index)
        if err:
            regions.append(RegionProbe(index, err))
            continue
        regions.append(RegionProbe(index, 0, region.flags, region.size, tuple(c.id for c in region.caps),
                                   region.sparse_areas, region.type))
    return DeviceProbe(device.name, info.flags, info.num_regions, info.num_irqs, code,
                       MigFlag(flags) if not code else MigFlag(0), features, tuple(regions),
                       tuple(virtualized_ranges(device)))


# -- which backend opens an id -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Source:
    """A device id resolved to the backend (and the profile) that opens it."""

    device_id: str
    profile: Profile          # the PROFILE of PROFILE=ID, or a stub for the backend
    base: Profile | None      # the named profile (PROFILE=ID), if any

    @property
    def backend(self) -> str:
        return self.profile.backend


def _stub(backend: str) -> Profile:
    return Profile(name="draft", path="<draft>", backend=backend,
                   migration=Migration(protocol="none", flags=MigFlag(0)), timeouts=Timeouts(io=5.0))


def resolve_source(value: str, backend: str | None = None) -> Source:
    """`PROFILE=ID` (opened as that profile's backend opens it, e.g. a sim instance), or an ID that
    `backend` can open; without one, `NAME:...` names backend NAME (vfio-user:SOCKET), anything else
    is a host device (BDF, mdev UUID, cdev) of the first host backend that finds it."""
    name, sep, device_id = value.partition("=")
    if sep:
        base = find_profile(name)
        registry.check_devices(base, (device_id,))
        return Source(device_id, base, base)
    if backend is not None:
        stub = _stub(registry.get(backend).name)
        registry.check_devices(stub, (value,))
        return Source(value, stub, None)
    for candidate in registry.names():               # an id of the form NAME:..., e.g. vfio-user:SOCKET
        if value.startswith(candidate + ":"):
            stub = _stub(candidate)
            registry.check_devices(stub, (value,))
            return Source(value, stub, None)
    refusals = []
    for candidate in (b.name for b in registry.host_backends()):
        stub = _stub(candidate)
        try:
            registry.check_devices(stub, (value,))
        except ConfigError as exc:
            refusals.append(f"{candidate}: {exc.message}")
            continue
        return Source(value, stub, None)
    raise ConfigError(f"no backend can open device {value!r} ({'; '.join(refusals)})",
                      hint="a sim instance is named PROFILE=ID (e.g. sim-stop-copy=sim0), a vfio-user "
                           "server vfio-user:SOCKET; or pass --backend")


def _location(source: Source):
    """The host device's location (driver, ids, mdev type) for `match:`; None off the host."""
    backend = registry.get(source.backend)
    if not backend.host_devices:
        return None
    want = source.device_id.strip().lower()
    for loc in backend.list_host_devices():
        names = {loc.id.lower(), (loc.cdev_path or "").lower(), os.path.basename(loc.cdev_path or "")}
        if want in names or (want.count(":") == 1 and loc.id.lower().endswith(want)):
            return loc
    return None


# -- the draft ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Draft:
    """A draft profile's text and what it was made from."""

    text: str
    name: str
    probes: list[DeviceProbe]
    matched: Profile | None


def new_draft(values: list[str], backend: str | None = None, name: str | None = None,
              kernel_release: str | None = None) -> Draft:
    """Probe the device(s) (first: source, second: destination) and render a draft profile."""
    if not values:
        raise ConfigError("profile new needs --from-device ID")
    sources = [resolve_source(v, backend) for v in values]
    if len({s.backend for s in sources}) > 1 or len({s.profile.name for s in sources}) > 1:
        raise ConfigError("every --from-device must be opened by the same backend (and profile): "
                          + ", ".join(f"{s.device_id} -> {s.backend}" for s in sources))
    registry.check_devices(sources[0].profile, tuple(s.device_id for s in sources))
    probes = []
    for index, source in enumerate(sources):
        try:
            device = registry.open_device(source.profile, source.device_id, registry.role_of(index))
        except (OSError, VfioConformError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"cannot open device {source.device_id!r} with backend "
                              f"{source.backend!r}: {getattr(exc, 'strerror', None) or exc}") from None
        try:
            probes.append(probe_device(device))
        finally:
            device.close(safe=False)          # untouched: nothing to return to a safe state
    loc = _location(sources[0])
    matched = sources[0].base or _matched_profile(sources[0].backend, loc)
    draft_name = name or _draft_name(matched, loc, sources[0])
    text = render(draft_name, sources, probes, loc, matched, kernel_release or os.uname().release)
    check_profile(build_profile(load_marked(text, f"<draft {draft_name}>")))   # loads as written
    return Draft(text, draft_name, probes, matched)


def _matched_profile(backend: str, loc) -> Profile | None:
    if loc is None:
        return None
    good, _ = load_all()
    return best_match([p for p in good if p.backend == backend], loc)


def _draft_name(matched: Profile | None, loc, source: Source) -> str:
    if matched is not None:
        base = matched.name
    elif loc is not None and loc.kind == "pci" and loc.vendor_id is not None:
        base = f"{loc.driver or 'pci'}-{loc.vendor_id:04x}-{loc.device_id:04x}"
    elif loc is not None:
        base = loc.mdev_type or loc.driver or "device"
    else:
        base = source.backend
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-.") or "device"
    return f"{base}-draft"


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is valid YAML)."""
    return json.dumps(text)


def _flow(value) -> str:
    """Plain data as YAML flow text (JSON is YAML)."""
    return json.dumps(value)


def render(name: str, sources: list[Source], probes: list[DeviceProbe], loc, matched: Profile | None,
           kernel_release: str) -> str:
    """The draft profile as commented YAML; every guess carries a `# REVIEW:` comment."""
    src = probes[0]
    backend = sources[0].backend
    ids = [s.device_id for s in sources]
    lines = [
        f"# Draft profile written by `vfio-conform profile new` from {', '.join(ids)} "
        f"(backend {backend}, kernel {kernel_release}, {time.strftime('%Y-%m-%d')}).",
        "# Facts come from the device's own answers (DEVICE_GET_INFO, GET_REGION_INFO, MIGRATION GET,",
        "# feature PROBEs); every line marked REVIEW is a guess to check against the driver's source.",
        f"name: {name}",
        f"description: {_q(_description(src, loc, backend))}   {REVIEW} one line for humans",
        f"backend: {backend}",
        f"devices: {_flow(ids)}   {REVIEW} source, then destination (overridable with --device)",
    ]
    lines += _match_lines(loc)
    lines += _migration_lines(src)
    lines += _feature_lines(src)
    lines += _hazard_lines(matched)
    lines += _known_issue_lines(name, matched)
    lines += _misc_lines(matched)
    if sources[0].base is not None and sources[0].base.backend_config:
        lines += [f"backend_config:   {REVIEW} copied from profile {sources[0].base.name}: it defines "
                  "the device probed"]
        for key, section in sources[0].base.backend_config.items():
            lines.append(f"  {key}: {_flow(section)}")
    lines += _region_lines(probes)
    return "\n".join(lines) + "\n"


def _description(probe: DeviceProbe, loc, backend: str) -> str:
    what = {"v2": f"v2 migration {'+'.join(f.name for f in MigFlag if f & probe.migration_flags)}",
            "v1": "v1 migration region", "none": "no migration"}[probe.protocol]
    if loc is not None:
        ids = (f" {loc.vendor_id:04x}:{loc.device_id:04x}" if loc.vendor_id is not None else "")
        kind = f"mdev {loc.mdev_type}" if loc.kind == "mdev" else f"PCI{ids}"
        return f"draft: {kind} on {loc.driver or 'no driver'} ({what})"
    return f"draft: {backend} device {probe.name} ({what})"


def _match_lines(loc) -> list[str]:
    if loc is None:
        return [f"match: {{}}   {REVIEW} not a host device: nothing to match on"]
    out = [f"match:   {REVIEW} from sysfs; widen or narrow to the device family this profile covers"]
    if loc.driver:
        out.append(f"  driver: {loc.driver}")
    if loc.vendor_id is not None:
        out.append(f"  vendor_id: {loc.vendor_id:#06x}")
    if loc.device_id is not None:
        out.append(f"  device_id: {loc.device_id:#06x}")
    if loc.mdev_type:
        out.append(f"  mdev_type: {loc.mdev_type}")
    return out


def _probe_text(probe: DeviceProbe) -> str:
    return ", ".join(f"{op.name} {f.name}: {'not a feature of the transport' if code == NOT_OFFERED else errno_name(code)}"
                     for f, op, code in probe.features)


def _migration_lines(p: DeviceProbe) -> list[str]:
    out = ["migration:"]
    if p.protocol == "none":
        out.append(f"  protocol: none   # GET MIGRATION gives {errno_name(p.migration_errno)} and no "
                   "region carries the v1 migration type: region suites only")
        return out
    if p.protocol == "v1":
        v1 = p.v1_region
        out += [f"  protocol: v1   # region {v1.index} carries the v1 migration type (3/1), "
                f"{v1.size:#x} bytes, flags {_flag_names(v1.flags)}; GET MIGRATION gives "
                f"{errno_name(p.migration_errno)}",
                "  flags: [STOP_COPY]   # unused by v1 (the schema needs a flag set)"]
        return out
    names = [f.name for f in MigFlag if f & p.migration_flags]
    out += ["  protocol: v2   # GET VFIO_DEVICE_FEATURE_MIGRATION answers",
            f"  flags: [{', '.join(names)}]   # as GET MIGRATION reports them "
            f"({int(p.migration_flags):#x})"]
    if p.answers(Feature.MIG_DATA_SIZE, _GET):
        out.append(f"  data_size_tolerance: 0.0   {REVIEW} MIG_DATA_SIZE answers PROBE; 0.0 demands the "
                   "exact STOP_COPY stream length, a driver that estimates needs a tolerance")
    elif not p.offered(Feature.MIG_DATA_SIZE, _GET):
        out.append("  data_size_tolerance: 0.0   # unused: MIG_DATA_SIZE is not a feature of the device's "
                   "transport (its data-size tests are not-supported)")
    else:
        out.append(f"  data_size_tolerance: 0.0   {REVIEW} PROBE GET MIG_DATA_SIZE fails "
                   "(vfio.h makes it mandatory with v2 migration: expect failures)")
    precopy = ("PRECOPY_INFO was not probed (an ioctl on a pre-copy data fd: reaching one changes "
               "the device state); " if p.migration_flags & MigFlag.PRE_COPY else "")
    out.append(f"  precopy_enomsg: should   {REVIEW} {precopy}'must' if the driver ends pre-copy data "
               "with ENOMSG")
    return out


def _feature_lines(p: DeviceProbe) -> list[str]:
    has_reset = bool(p.device_flags & DeviceFlag.RESET)
    reset_note = ("DEVICE_INFO reports VFIO_DEVICE_FLAGS_RESET" if has_reset else
                  f"{REVIEW} DEVICE_INFO lacks VFIO_DEVICE_FLAGS_RESET (not tried); true if "
                  "VFIO_DEVICE_RESET works anyway")
    dma = p.dma_logging
    dma_note = ("PROBE SET DMA_LOGGING_START and PROBE GET DMA_LOGGING_REPORT answer 0" if dma else
                "the DMA logging PROBEs fail")
    return [f"# device flags {_flag_names(p.device_flags)}, {p.num_regions} regions, {p.num_irqs} irqs",
            f"# PROBE answers: {_probe_text(p)}",
            "features:",
            f"  reset: {str(has_reset).lower()}   # {reset_note}",
            f"  dma_logging: {str(dma).lower()}   # {dma_note}"]


def _hazard_lines(matched: Profile | None) -> list[str]:
    out = [f"hazards: {{}}   {REVIEW} no kernel is declared safe for any hazard: every hazard arc is "
           "gated. List kernels only after reading the driver and core source of that kernel."]
    if matched is not None and matched.hazards:
        for gate in matched.hazards:
            out.append(f"#   profile {matched.name} declares {gate.name} safe on {list(gate.safe_on)}")
    return out


def _known_issue_lines(name: str, matched: Profile | None) -> list[str]:
    if matched is None or not matched.known_issues:
        return [f"known_issues: []   {REVIEW} add a waiver (test, rule, link, reason) only for a "
                "deviation with a public report"]
    out = [f"known_issues:   {REVIEW} the known deviations of this driver, from profile "
           f"{matched.name} ({Path(matched.path).name}); keep only those this device shares"]
    for issue in matched.known_issues:
        out += [f"  - test: {_q(_rename_waiver(issue.test, matched.name, name))}",
                f"    rule: {issue.rule}",
                f"    link: {_q(issue.link)}",
                f"    reason: {_q(issue.reason)}"]
    return out


def _rename_waiver(test: str, old: str, new: str) -> str:
    """Point a waiver's test pattern at the draft's test ids (they carry the profile name)."""
    function, bracket, params = test.partition("[")
    if bracket and params.startswith(old) and params[len(old):len(old) + 1] in ("", "*", ":", "?", "]"):
        return f"{function}[{new}{params[len(old):]}"
    return test


def _misc_lines(matched: Profile | None) -> list[str]:
    timeouts = matched.timeouts if matched is not None else Timeouts()
    walk = matched.walk if matched is not None else Walk()
    whence = f"from profile {matched.name}" if matched is not None else "the defaults"
    return [f"timeouts: {{test: {timeouts.test:g}, io: {timeouts.io:g}}}   {REVIEW} {whence}; a NIC's "
            "STOP_COPY can take seconds, a GPU's stream is gigabytes",
            f"walk: {{examples: {walk.examples}, steps: {walk.steps}, mutations: {walk.mutations}, "
            f"seed: {walk.seed}}}   {REVIEW} {whence}",
            f"verify: none   {REVIEW} name a hook (vfio_conform.verify group) that proves a round trip "
            "arrived; none: the round-trip suites are not-supported"]


def _flag_names(flags) -> str:
    names = [f.name for f in type(flags) if f & flags and f.name]
    return "|".join(names) or "0"


def _region_lines(probes: list[DeviceProbe]) -> list[str]:
    src = probes[0]
    if len(probes) > 1:
        diff = [i for i in sorted(set(src.layout()) | set(probes[1].layout()))
                if src.layout().get(i) != probes[1].layout().get(i)]
        peer = "different" if diff else "same"
        why = (f"regions {diff} differ between {probes[0].name} and {probes[1].name} (size, flags)"
               if diff else f"{probes[0].name} and {probes[1].name} report the same regions")
    else:
        peer, why = "same", f"{REVIEW} only one device probed"
    out = [f"regions:   {REVIEW} access: none everywhere: the suites only query region info; grant "
           "read (or readwrite) on ranges without side effects (never on a real device's BARs "
           "unless its documentation says so)",
           f"  peer_layout: {peer}   # {why}"]
    for r in src.regions:
        key = region_name(r.index) if region_name(r.index) in REGION_NAMES else str(r.index)
        if r.errno:
            out.append(f"  # region {key}: GET_REGION_INFO gives {errno_name(r.errno)}: not declared")
            continue
        notes = [f"flags {_flag_names(r.flags)}"]
        if r.sparse_areas is not None:
            notes.append("sparse mmap " + ", ".join(f"[{o:#x}, +{s:#x})" for o, s in r.sparse_areas))
        if r.type is not None:
            notes.append(f"type {r.type[0]}/{r.type[1]}"
                         + (" (v1 migration region)" if r.v1_migration else ""))
        other = [c for c in r.caps if c not in (RegionCap.SPARSE_MMAP, RegionCap.TYPE)]
        if other:
            notes.append(f"caps {other}")
        out.append(f"  {key}: {{access: none, size: {r.size:#x}, mmap: {str(r.mmappable).lower()}}}"
                   f"   # {'; '.join(notes)}")
        for v in (v for v in src.virtualized if v.index == r.index):
            out.append(f"  #   virtualized {key} [{v.offset:#x}, +{v.length:#x}): {v.why}; the region "
                       "checks compare pread with mmap only outside it")
    return out


def write_draft(draft: Draft, output: str | None) -> None:
    """Write the draft to `output` (refusing to overwrite a file), or print it."""
    if output is None:
        print(draft.text, end="")
        return
    path = Path(output)
    if path.exists():
        raise ConfigError(f"{output} exists: not overwritten", hint="choose another -o FILE")
    path.write_text(draft.text)
