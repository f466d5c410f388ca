"""Profile schema: nested dataclasses that mirror the YAML, each validated with file:line.

One source of truth: a section's YAML keys are its dataclass's fields (`yaml_keys`; a field with
metadata {"yaml": False} is not a key), region names are REGION_NAMES, hazard names HAZARDS, and
backend and verify hook names come from their extension groups (vfio_conform/base/extensions.py).
A field's `doc` metadata (or its class docstring's Args) describes it for the JSON-Schema export.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import re

from ..base.errors import ConfigError, shown
from ..base.extensions import BACKENDS, VERIFY, ExtensionError
from ..model.spec import RULES
from ..uapi.enums import MigFlag
from .yamlmarks import Marked

NOT_YAML = {"yaml": False}


def yaml_keys(cls) -> tuple[str, ...]:
    """The YAML keys of the section `cls` mirrors (its fields, minus those marked NOT_YAML)."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("yaml", True))


def field_docs(cls) -> dict[str, str]:
    """Each key's description, from the `Args:` block of the record's docstring ('a, b: text' names
    several keys; indented lines continue the previous one)."""
    docs: dict[str, str] = {}
    names: list[str] = []
    in_args = False
    for line in (cls.__doc__ or "").splitlines():
        text = line.strip()
        if text == "Args:":
            in_args = True
            continue
        if not in_args or not text:
            continue
        head, sep, rest = text.partition(": ")
        keys = [k.strip() for k in head.split(",")]
        if sep and all(k.replace(".", "_").isidentifier() for k in keys):
            names = keys
            for key in names:
                docs[key] = rest.strip()
        elif names:
            for key in names:
                docs[key] += " " + text
    return docs


PROTOCOLS = ("v2", "v1", "none")   # none: a device without migration (region suites only)
HAZARDS = ("blocked-arc-hang", "set-from-error-warn")


@dataclasses.dataclass(frozen=True)
class Match:
    """How a host device is matched to this profile.

    Args:
        driver: kernel driver bound to the device (e.g. vfio-pci, mlx5_vfio_pci, mtty).
        vendor_id, device_id: PCI ids (ints).
        device_ids: further PCI device ids of the same family (a device matches if its id is
            device_id or one of these).
        mdev_type: mdev type name (e.g. mtty-2).
        kernel: kernels the profile describes (KERNEL SPECS: each an fnmatch pattern on `uname -r`
            or comma-joined bounds such as '>=6.2,<6.7'); a run on another kernel is refused
            (empty: any kernel).
    """

    driver: str | None = None
    vendor_id: int | None = None
    device_id: int | None = None
    device_ids: tuple[int, ...] = ()
    mdev_type: str | None = None
    kernel: tuple[str, ...] = ()

    def device_matches(self, device_id: int | None) -> bool:
        """True if `device_id` is the declared device_id or one of device_ids."""
        return device_id is not None and (device_id == self.device_id or device_id in self.device_ids)

    def kernel_matches(self, kernel_release: str) -> bool:
        """True if the profile describes `kernel_release` (always, without a kernel list)."""
        return not self.kernel or any(_kernel_matches(kernel_release, s) for s in self.kernel)


#: A waiver's `test`: one whole test function name, then optionally its parameters ('[...'),
#: where '*' and '?' are wildcards. '*', '' or 'test_*' would waive whole suites and are refused.
WAIVER_TEST = re.compile(r"(?P<function>test_[A-Za-z0-9_]+)(?:\[.*)?")


@dataclasses.dataclass(frozen=True)
class KnownIssue:
    """A waived failure: a violation of `rule` in a test whose id matches `test`.

    Args:
        test: test id pattern: a test function name, then optionally '[' and its parameters with
            '*'/'?' wildcards, e.g. 'test_resume_rejects_corrupt_header[mtty*'.
        rule: the rule id (model/spec.py) whose violation is waived; other rules still fail.
        link: URL of the bug/report (required).
        reason: one line on why.
        index: position in the profile's known_issues list (names it in messages).
    """

    test: str
    rule: str
    link: str
    reason: str
    index: int = dataclasses.field(default=0, metadata=NOT_YAML)

    @property
    def function(self) -> str:
        """The test function the waiver names."""
        return WAIVER_TEST.fullmatch(self.test).group("function")

    def matches(self, test_id: str) -> bool:
        """'*' and '?' are wildcards; '[' is literal (test ids are full of brackets)."""
        pattern = self.test.replace("[", "[[]")
        return fnmatch.fnmatchcase(test_id, pattern)

    def waives(self, test_id: str, rule_id: str) -> bool:
        """True for a violation of this waiver's rule in a test it names."""
        return rule_id == self.rule and self.matches(test_id)


@dataclasses.dataclass(frozen=True)
class HazardGate:
    """Kernels on which the hazard arc `name` may run.

    Args:
        safe_on: KERNEL SPECS (fnmatch patterns on `uname -r`, or bounds such as '>=X.Y.Z' and
            '>=6.2,<6.7').
    """

    name: str = dataclasses.field(metadata=NOT_YAML)
    safe_on: tuple[str, ...] = ()

    def safe(self, kernel_release: str) -> bool:
        return any(_kernel_matches(kernel_release, spec) for spec in self.safe_on)


@dataclasses.dataclass(frozen=True)
class Timeouts:
    """The profile's `timeouts:` section, in seconds.

    Args:
        test: one test's wall time.
        io: one data_fd read/write (and the device's blocking calls).
    """

    test: float = 120.0
    io: float = 30.0




@dataclasses.dataclass(frozen=True)
class Walk:
    """Bounds of the hypothesis-driven depth suites (random walks, stream mutations).

    Args:
        examples: walks per run.
        steps: actions per walk.
        mutations: mutated streams per run.
        seed: hypothesis seed (recorded in the results; the same seed replays the same walks).
    """

    examples: int = 30
    steps: int = 20
    mutations: int = 25
    seed: int = 20261123


#: Access a profile grants the harness on a region (regions.<REGION>.access).
REGION_ACCESS = ("none", "read", "readwrite")
REGION_WIDTHS = (1, 2, 4, 8)
PEER_LAYOUTS = ("same", "different")
#: vfio-pci fixed region names usable as keys of `regions:` (others: the integer index).
REGION_NAMES = {"BAR0": 0, "BAR1": 1, "BAR2": 2, "BAR3": 3, "BAR4": 4, "BAR5": 5, "ROM": 6,
                "CONFIG": 7, "VGA": 8}


@dataclasses.dataclass(frozen=True)
class RegionPolicy:
    """What the harness may touch in one region and what the profile expects of it.

    Args:
        access: 'none' (never touched), 'read' or 'readwrite'.
        ranges: (offset, length) windows that may be touched (None: the whole region).
        max_offset: last byte offset that may be touched (inclusive).
        size, mmap: expected region size and MMAP flag (None: not checked).
        widths: access sizes that must work; the only sizes the region suites use on the region
            (every pread, pwrite, mmap load and store), so a device may refuse the others.
        unaligned: True/False: unaligned accesses must work/fail (None: untested).
        probe_bounds: the harness may issue accesses crossing or past the end (driver bounds-checks).
    """

    index: int = dataclasses.field(metadata=NOT_YAML)
    name: str = dataclasses.field(metadata=NOT_YAML)
    access: str = "none"
    ranges: tuple[tuple[int, int], ...] | None = None
    max_offset: int | None = None
    size: int | None = None
    mmap: bool | None = None
    widths: tuple[int, ...] = (1, 2, 4)
    unaligned: bool | None = None
    probe_bounds: bool = False

    @property
    def readable(self) -> bool:
        return self.access in ("read", "readwrite")

    @property
    def writable(self) -> bool:
        return self.access == "readwrite"

    def windows(self, region_size: int) -> list[tuple[int, int]]:
        """The (offset, length) windows that may be touched, clipped to the region and max_offset."""
        end = region_size if self.max_offset is None else min(region_size, self.max_offset + 1)
        spans = self.ranges if self.ranges is not None else ((0, end),)
        out = [(o, min(o + n, end) - o) for o, n in spans if o < end and n > 0]
        return [w for w in out if w[1] > 0]

    def allows(self, offset: int, length: int, region_size: int, write: bool = False) -> bool:
        """True if [offset, offset+length) is inside one allowed window (and the access is allowed)."""
        if not (self.writable if write else self.readable) or length <= 0:
            return False
        return any(o <= offset and offset + length <= o + n for o, n in self.windows(region_size))


@dataclasses.dataclass(frozen=True)
class Regions:
    """The profile's `regions:` section: per-region policies (keys REGION_NAMES or an index; an
    undeclared region is access 'none') and the peer layout.

    Args:
        peer_layout: 'same' or 'different': whether source and destination have the same regions.
    """

    policies: tuple[RegionPolicy, ...] = dataclasses.field(default=(), metadata=NOT_YAML)
    peer_layout: str = "same"

    def policy(self, index: int) -> RegionPolicy:
        found = next((p for p in self.policies if p.index == index), None)
        return found or RegionPolicy(index, region_name(index))


def region_name(index: int) -> str:
    """BAR0..VGA for the vfio-pci fixed indexes, R<index> beyond."""
    return next((n for n, i in REGION_NAMES.items() if i == index), f"R{index}")


@dataclasses.dataclass(frozen=True)
class KernelFlags:
    """The migration flags a driver reports on a range of kernels (an item of
    migration.flags_by_kernel).

    Args:
        kernel: KERNEL SPECS this item applies to (e.g. ['>=6.2,<6.7']).
        flags: the VFIO_MIGRATION_* flags reported there (a list of names; STOP_COPY required).
    """

    kernel: tuple[str, ...]
    flags: MigFlag


@dataclasses.dataclass(frozen=True)
class Migration:
    """The profile's `migration:` section.

    Args:
        protocol: 'v2' (data_fd), 'v1' (migration region) or 'none' (no migration: region suites only).
        flags: expected VFIO_MIGRATION_* flags (YAML: a list of names; STOP_COPY required).
        data_size_tolerance: allowed |MIG_DATA_SIZE - actual| / actual.
        precopy_enomsg: 'must' or 'should' (6.12 drivers other than mlx5 return 0).
        flags_by_kernel: list of {kernel, flags} (see KernelFlags): the flags on older or newer
            kernels; the first item whose kernel matches the running kernel replaces `flags`.
    """

    protocol: str = dataclasses.field(default="v2", metadata={"choices": PROTOCOLS})
    flags: MigFlag = MigFlag.STOP_COPY
    data_size_tolerance: float = 0.0
    precopy_enomsg: str = dataclasses.field(default="should", metadata={"choices": ("must", "should")})
    flags_by_kernel: tuple[KernelFlags, ...] = ()

    def flags_on(self, kernel_release: str) -> MigFlag:
        """The flags the device reports on `kernel_release`."""
        found = next((k for k in self.flags_by_kernel
                      if any(_kernel_matches(kernel_release, s) for s in k.kernel)), None)
        return found.flags if found else self.flags


@dataclasses.dataclass(frozen=True)
class Features:
    """The profile's `features:` section.

    Args:
        reset: VFIO_DEVICE_RESET returns the device to RUNNING.
        dma_logging: DMA logging features are offered.
    """

    reset: bool = True
    dma_logging: bool = False


@dataclasses.dataclass(frozen=True)
class Profile:
    """One vendor device family; each field is the top-level YAML key of the same name.

    Args:
        name: profile id (used in test ids and reports).
        description: one line for humans.
        backend: the backend that opens the devices (a name in the vfio_conform.backends group).
        devices: default device ids (the backend's names: sim instances, BDFs/UUIDs), overridable
            with --device.
        match: how a host device is recognised (see Match).
        migration: protocol and expected flags (see Migration).
        features: optional device features (see Features).
        hazards: name -> {safe_on: [...]} kernels where gated arcs may run.
        known_issues: list of {test, rule, link, reason} (see KnownIssue).
        timeouts: {test, io} seconds.
        backend_config: {backend name: its section}, validated by that backend (only the
            profile's own backend may have one).
        regions: per-region access fences and expectations (see RegionPolicy).
        verify: hook proving the destination holds the source's state (vfio_conform.verify group).
        walk: bounds and seed of the hypothesis depth suites (see Walk).
        lab: how the QEMU lab provides the devices (see LabTarget).
    """

    name: str
    path: str = dataclasses.field(metadata=NOT_YAML)
    backend: str
    description: str = ""
    devices: tuple[str, ...] = ()
    match: Match = Match()
    migration: Migration = Migration()
    features: Features = Features()
    hazards: tuple[HazardGate, ...] = ()
    known_issues: tuple[KnownIssue, ...] = ()
    timeouts: Timeouts = Timeouts()
    backend_config: dict = dataclasses.field(default_factory=dict)
    regions: Regions = Regions()
    verify: str = "none"
    walk: Walk = Walk()
    lab: "LabTarget | None" = None
    #: dotted field -> line in the profile file, for errors found after loading (devices, backend).
    lines: dict = dataclasses.field(default_factory=dict, compare=False, repr=False, metadata=NOT_YAML)

    def __repr__(self) -> str:          # stable: Allure history ids are built from it
        return f"Profile({self.name!r})"

    # Shortcuts for the most used nested values (read-only views of migration/features).
    @property
    def protocol(self) -> str:
        return self.migration.protocol

    @property
    def flags(self) -> MigFlag:
        return self.migration.flags

    @property
    def data_size_tolerance(self) -> float:
        return self.migration.data_size_tolerance

    @property
    def precopy_enomsg(self) -> str:
        return self.migration.precopy_enomsg

    @property
    def reset(self) -> bool:
        return self.features.reset

    @property
    def dma_logging(self) -> bool:
        return self.features.dma_logging

    def for_kernel(self, kernel_release: str) -> "Profile":
        """This profile as it applies on `kernel_release`: migration.flags_by_kernel resolved.

        Raises ConfigError (at match.kernel) if the profile does not describe that kernel."""
        if not self.match.kernel_matches(kernel_release):
            raise self.error("match.kernel", f"profile {self.name!r} describes kernels "
                             f"{', '.join(self.match.kernel)}, not {kernel_release}",
                             "use a profile written for this kernel, or pass --kernel-release")
        flags = self.migration.flags_on(kernel_release)
        if flags == self.migration.flags:
            return self
        return dataclasses.replace(self, migration=dataclasses.replace(self.migration, flags=flags))

    def hazard_safe(self, hazard: str, kernel_release: str) -> bool:
        return any(g.name == hazard and g.safe(kernel_release) for g in self.hazards)

    def known_issue(self, test_id: str, rule_id: str) -> KnownIssue | None:
        """The waiver covering a violation of `rule_id` in `test_id`, if any."""
        return next((k for k in self.known_issues if k.waives(test_id, rule_id)), None)

    def waivers_for(self, test_id: str) -> list[KnownIssue]:
        """Every waiver naming `test_id` (whatever its rule)."""
        return [k for k in self.known_issues if k.matches(test_id)]

    def error(self, dotted: str, message: str, hint: str | None = None) -> ConfigError:
        """A ConfigError at the line of `dotted` (or its nearest parent) in the profile file."""
        line = None
        while dotted and line is None:
            line = self.lines.get(dotted)
            dotted = dotted.rpartition(".")[0] if line is None else dotted
        return ConfigError(message, self.path, line or self.lines.get(""), dotted or None, hint)


def build_profile(doc: Marked) -> Profile:
    """Validate a marked YAML document into a Profile (raises ConfigError naming file:line: field)."""
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error("", "a profile is a YAML mapping", "see profiles/sim-stop-copy.yaml")
    if not set(data) & set(yaml_keys(Profile)):      # another kind of file: say so, echo none of it
        raise ConfigError("is not a profile: none of its top-level keys is a profile field", doc.path,
                          hint="see profiles/sim-stop-copy.yaml")
    _no_unknown(doc, "", data, yaml_keys(Profile))
    name = _str(doc, "name", data.get("name"), required=True)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise doc.error("name", f"{name!r} must be letters, digits, '.', '_' or '-'")
    backend = _choice(doc, "backend", data.get("backend"), _names(doc, "backend", BACKENDS), required=True)
    timeouts = _map(doc, "timeouts", data.get("timeouts"))
    _no_unknown(doc, "timeouts", timeouts, yaml_keys(Timeouts))
    return Profile(
        name=name, path=doc.path, backend=backend,
        description=_str(doc, "description", data.get("description")) or "",
        devices=tuple(_device_id(doc, f"devices.{i}", d)
                      for i, d in enumerate(_list(doc, "devices", data.get("devices")))),
        match=_match(doc, data.get("match")),
        migration=_migration(doc, data.get("migration")),
        features=_features(doc, data.get("features")),
        hazards=_hazards(doc, data.get("hazards")),
        known_issues=_known_issues(doc, data.get("known_issues")),
        timeouts=Timeouts(
            test=_number(doc, "timeouts.test", timeouts.get("test", 120.0), 0.1, 86400),
            io=_number(doc, "timeouts.io", timeouts.get("io", 30.0), 0.01, 86400)),
        backend_config=_backend_config(doc, data.get("backend_config"), backend),
        regions=_regions(doc, data.get("regions")),
        verify=_choice(doc, "verify", data.get("verify", "none"), _names(doc, "verify", VERIFY)),
        walk=_walk(doc, data.get("walk")),
        lab=_lab(doc, data.get("lab")),
        lines=dict(doc.lines),
    )


def _names(doc, field, group) -> tuple[str, ...]:
    try:
        return tuple(group.names())
    except ExtensionError as exc:
        raise doc.error(field, str(exc)) from None


def _migration(doc, value) -> Migration:
    mig = _map(doc, "migration", value, required=True)
    _no_unknown(doc, "migration", mig, yaml_keys(Migration))
    protocol = _choice(doc, "migration.protocol", mig.get("protocol", "v2"), PROTOCOLS)
    if protocol == "none" and mig.get("flags"):
        raise doc.error("migration.flags", "a device with protocol: none reports no migration flags")
    return Migration(
        protocol=protocol,
        flags=MigFlag(0) if protocol == "none" else _flags(doc, mig.get("flags")),
        data_size_tolerance=_number(doc, "migration.data_size_tolerance",
                                    mig.get("data_size_tolerance", 0.0), 0.0, 10.0),
        precopy_enomsg=_choice(doc, "migration.precopy_enomsg", mig.get("precopy_enomsg", "should"),
                               ("must", "should")),
        flags_by_kernel=_flags_by_kernel(doc, mig.get("flags_by_kernel"), protocol))


def _flags_by_kernel(doc, value, protocol: str) -> tuple[KernelFlags, ...]:
    items = []
    for i, item in enumerate(_list(doc, "migration.flags_by_kernel", value)):
        field = f"migration.flags_by_kernel.{i}"
        item = _map(doc, field, item, required=True)
        _no_unknown(doc, field, item, yaml_keys(KernelFlags))
        if protocol == "none":
            raise doc.error(field, "a device with protocol: none reports no migration flags")
        kernel = _kernel_specs(doc, f"{field}.kernel", item.get("kernel"), required=True)
        items.append(KernelFlags(kernel, _flags(doc, item.get("flags"), f"{field}.flags")))
    return tuple(items)


#: One condition of a kernel spec: a '>=' or '<' bound on the version, or an fnmatch pattern.
_KERNEL_BOUND = re.compile(r"(>=|<)\s*\d+(\.\d+){0,2}")


def _kernel_specs(doc, field, value, required=False) -> tuple[str, ...]:
    """A list of KERNEL SPECS: fnmatch patterns or comma-joined '>=X.Y[.Z]' / '<X.Y[.Z]' bounds."""
    specs = _list(doc, field, value)
    if required and not specs:
        raise doc.error(field, "is required", "a list such as ['>=6.2,<6.7'] or ['6.12.*']")
    for i, spec in enumerate(specs):
        spec = _str(doc, f"{field}.{i}", spec, required=True)
        for cond in spec.split(","):
            cond = cond.strip()
            if not cond or (cond[0] in "<>=" and not _KERNEL_BOUND.fullmatch(cond)):
                raise doc.error(f"{field}.{i}", f"{spec!r} is not a kernel spec",
                                "an fnmatch pattern on uname -r, or bounds like '>=6.2,<6.7'")
    return tuple(specs)


def _features(doc, value) -> Features:
    feats = _map(doc, "features", value)
    _no_unknown(doc, "features", feats, yaml_keys(Features))
    base = Features()
    return Features(**{k: _bool(doc, f"features.{k}", feats.get(k, getattr(base, k)))
                       for k in yaml_keys(Features)})


def _backend_config(doc, value, backend: str) -> dict:
    """{backend name: section}; the section itself is checked by its backend when selected."""
    data = _map(doc, "backend_config", value)
    for key, section in data.items():
        field = f"backend_config.{key}"
        if key != backend:
            raise doc.error(field, f"a {key!r} section needs backend: {key}",
                            f"this profile's backend is {backend!r}: use backend_config.{backend}")
        _map(doc, field, section)
    return {key: dict(section or {}) for key, section in data.items()}


def _kernel_matches(release: str, spec: str) -> bool:
    """`spec`: comma-joined conditions, all of which must hold ('>=X.Y', '<X.Y' or an fnmatch pattern)."""
    return all(_kernel_condition(release, cond.strip()) for cond in spec.split(","))


def _kernel_condition(release: str, cond: str) -> bool:
    if cond.startswith(">="):
        return _version(release) >= _version(cond[2:])
    if cond.startswith("<"):
        return _version(release) < _version(cond[1:])
    return fnmatch.fnmatchcase(release, cond)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", re.split(r"[^0-9.]", text.strip(), maxsplit=1)[0]))


def _no_unknown(doc: Marked, where: str, data: dict, known) -> None:
    for key in data:
        if key not in known:
            field = f"{where}.{key}" if where else str(key)
            raise doc.error(field, f"unknown key {key!r}", f"expected one of: {', '.join(sorted(known))}")


def _map(doc, field, value, required=False) -> dict:
    if value is None:
        if required:
            raise doc.error(field, "is required", "a mapping")
        return {}
    if not isinstance(value, dict):
        raise doc.error(field, f"expected a mapping, got {type(value).__name__}")
    return value


def _list(doc, field, value) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise doc.error(field, f"expected a list, got {type(value).__name__}")
    return value


def _str(doc, field, value, required=False) -> str | None:
    if value is None:
        if required:
            raise doc.error(field, "is required", "a string")
        return None
    if not isinstance(value, str):
        raise doc.error(field, f"expected a string, got {shown(value)}")
    return value


def _choice(doc, field, value, choices, required=False) -> str:
    if value is None and required:
        raise doc.error(field, "is required", f"one of: {', '.join(choices)}")
    if value not in choices:
        raise doc.error(field, f"{value!r} is not allowed", f"expected one of: {', '.join(choices)}")
    return value


def _bool(doc, field, value) -> bool:
    if not isinstance(value, bool):
        raise doc.error(field, f"expected true or false, got {value!r}")
    return value


def _number(doc, field, value, low, high) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise doc.error(field, f"expected a number, got {shown(value)}")
    if not low <= value <= high:
        raise doc.error(field, f"{value} is out of range", f"expected {low}..{high}")
    return float(value)


def _int(doc, field, value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise doc.error(field, f"expected a non-negative integer (e.g. 0x15b3), got {shown(value)}")
    if value >= 1 << 64:
        raise doc.error(field, f"{shown(value)} does not fit in 64 bits", "VFIO sizes and ids are u64 at most")
    return value


def _flags(doc, value, field: str = "migration.flags") -> MigFlag:
    names = _list(doc, field, value)
    if not names:
        raise doc.error(field, "is required", "a list such as [STOP_COPY, P2P]")
    flags = MigFlag(0)
    for i, name in enumerate(names):
        if name not in MigFlag.__members__:
            raise doc.error(f"{field}.{i}", f"{name!r} is not a migration flag",
                            f"known: {', '.join(MigFlag.__members__)}")
        flags |= MigFlag[name]
    if not flags & MigFlag.STOP_COPY:
        raise doc.error(field, "STOP_COPY is mandatory in every flag set")
    return flags


def _match(doc, value) -> Match:
    data = _map(doc, "match", value)
    _no_unknown(doc, "match", data, yaml_keys(Match))
    ids = []
    for i, dev in enumerate(_list(doc, "match.device_ids", data.get("device_ids"))):
        if _int(doc, f"match.device_ids.{i}", dev) is None:
            raise doc.error(f"match.device_ids.{i}", "expected a PCI device id (e.g. 0xa256), got null")
        ids.append(dev)
    return Match(driver=_str(doc, "match.driver", data.get("driver")),
                 vendor_id=_int(doc, "match.vendor_id", data.get("vendor_id")),
                 device_id=_int(doc, "match.device_id", data.get("device_id")),
                 device_ids=tuple(ids),
                 mdev_type=_str(doc, "match.mdev_type", data.get("mdev_type")),
                 kernel=_kernel_specs(doc, "match.kernel", data.get("kernel")))


def _hazards(doc, value) -> tuple[HazardGate, ...]:
    gates = []
    for name, body in _map(doc, "hazards", value).items():
        field = f"hazards.{name}"
        if name not in HAZARDS:
            raise doc.error(field, f"unknown hazard {name!r}", f"known: {', '.join(HAZARDS)}")
        body = _map(doc, field, body, required=True)
        _no_unknown(doc, field, body, yaml_keys(HazardGate))
        specs = tuple(_str(doc, f"{field}.safe_on.{i}", s, required=True)
                      for i, s in enumerate(_list(doc, f"{field}.safe_on", body.get("safe_on"))))
        gates.append(HazardGate(name, specs))
    return tuple(gates)


def _is_url(text: str) -> bool:
    """An http(s) URL with a host name (`http://` alone, or with spaces, is not)."""
    from urllib.parse import urlsplit
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(host) and not any(c.isspace() for c in text)


def _device_id(doc, field, value) -> str:
    """A device id: a string without control characters (an ESC would reach terminals raw)."""
    text = _str(doc, field, value, required=True)
    if not text or any(not c.isprintable() for c in text):
        raise doc.error(field, f"device name {shown(text)} is empty or holds control characters")
    return text


def _known_issues(doc, value) -> tuple[KnownIssue, ...]:
    issues = []
    for i, item in enumerate(_list(doc, "known_issues", value)):
        field = f"known_issues.{i}"
        item = _map(doc, field, item, required=True)
        _no_unknown(doc, field, item, yaml_keys(KnownIssue))
        test = _str(doc, f"{field}.test", item.get("test"), required=True)
        if not WAIVER_TEST.fullmatch(test):
            raise doc.error(f"{field}.test", f"{test!r} does not name a test function",
                            "start with the whole function name, e.g. 'test_arc[mtty:STOP->*'")
        rule = _str(doc, f"{field}.rule", item.get("rule"), required=True)
        if rule not in RULES:
            raise doc.error(f"{field}.rule", f"{rule!r} is not a rule id",
                            "the rule whose violation is waived, see vfio_conform/model/spec.py")
        link = _str(doc, f"{field}.link", item.get("link"), required=True)
        if not _is_url(link):
            raise doc.error(f"{field}.link", f"{shown(link)} is not a URL",
                            "a waiver needs a link to the report: http(s)://host/...")
        reason = _str(doc, f"{field}.reason", item.get("reason"), required=True)
        if not reason.strip():
            raise doc.error(f"{field}.reason", "is empty", "one line on why the failure is waived")
        issues.append(KnownIssue(test, rule, link, reason, i))
    return tuple(issues)


# -- regions: section ---------------------------------------------------------------


def _regions(doc, value) -> Regions:
    data = _map(doc, "regions", value)
    peer = _choice(doc, "regions.peer_layout", data.get("peer_layout", "same"), PEER_LAYOUTS)
    policies, seen = [], set()
    for key, body in data.items():
        if key == "peer_layout":
            continue
        field = f"regions.{key}"
        index = _region_index(doc, field, key)
        if index in seen:
            raise doc.error(field, f"region {index} declared twice")
        seen.add(index)
        body = _map(doc, field, body, required=True)
        _no_unknown(doc, field, body, yaml_keys(RegionPolicy))
        policies.append(_region_policy(doc, field, index, body))
    return Regions(tuple(sorted(policies, key=lambda p: p.index)), peer)


def _region_index(doc, field, key) -> int:
    if isinstance(key, int) and not isinstance(key, bool) and key >= 0:
        return key
    if isinstance(key, str) and key.isdigit():          # keys come through as scalars' text
        return int(key)
    if isinstance(key, str) and key in REGION_NAMES:
        return REGION_NAMES[key]
    raise doc.error(field, f"{key!r} is not a region",
                    f"use {', '.join(REGION_NAMES)}, an index (e.g. 9) or peer_layout")


def _region_policy(doc, field, index: int, body: dict) -> RegionPolicy:
    ranges = None
    if "ranges" in body:
        ranges = []
        for i, item in enumerate(_list(doc, f"{field}.ranges", body["ranges"])):
            if (not isinstance(item, list) or len(item) != 2
                    or _int(doc, f"{field}.ranges.{i}", item[0]) is None
                    or not _int(doc, f"{field}.ranges.{i}", item[1])):
                raise doc.error(f"{field}.ranges.{i}", f"expected [offset, length], got {item!r}")
            ranges.append((item[0], item[1]))
        ranges = tuple(ranges)
    widths = tuple(_list(doc, f"{field}.widths", body.get("widths", [1, 2, 4])))
    for i, width in enumerate(widths):
        if width not in REGION_WIDTHS or isinstance(width, bool):
            raise doc.error(f"{field}.widths.{i}", f"{width!r} is not an access width",
                            f"one of {REGION_WIDTHS}")
    mmap_, unaligned = body.get("mmap"), body.get("unaligned")
    return RegionPolicy(
        index=index, name=region_name(index),
        access=_choice(doc, f"{field}.access", body.get("access", "none"), REGION_ACCESS),
        ranges=ranges, max_offset=_int(doc, f"{field}.max_offset", body.get("max_offset")),
        size=_int(doc, f"{field}.size", body.get("size")),
        mmap=None if mmap_ is None else _bool(doc, f"{field}.mmap", mmap_),
        widths=widths,
        unaligned=None if unaligned is None else _bool(doc, f"{field}.unaligned", unaligned),
        probe_bounds=_bool(doc, f"{field}.probe_bounds", body.get("probe_bounds", False)))


# -- walk: section ---------------------------------------------------------------------
def _walk(doc, value) -> Walk:
    data = _map(doc, "walk", value)
    _no_unknown(doc, "walk", data, yaml_keys(Walk))
    base = Walk()
    out = {}
    for key in yaml_keys(Walk):
        got = _int(doc, f"walk.{key}", data.get(key))
        out[key] = getattr(base, key) if got is None else got
    if not out["examples"] or not out["steps"]:
        raise doc.error("walk", "examples and steps must be at least 1")
    return Walk(**out)


# -- lab: section (real-kernel QEMU lab) ---------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class LabTarget:
    """How the QEMU lab provides this profile's devices (its backend must open host devices).

    Args:
        mode: 'mdev' (an mtty variant module) or 'pci' (emulated PCI devices on vfio-pci).
        module: mtty variant to load (mdev mode), e.g. mtty, mtty_sc.
        devices: QEMU device roles to use, in source/destination order (pci mode), e.g. [edu0].
    """

    mode: str
    module: str | None = None
    devices: tuple[str, ...] = ()


def _lab(doc, value) -> LabTarget | None:
    if value is None:
        return None
    data = _map(doc, "lab", value)
    _no_unknown(doc, "lab", data, yaml_keys(LabTarget))
    mode = _choice(doc, "lab.mode", data.get("mode"), ("mdev", "pci"), required=True)
    module = _str(doc, "lab.module", data.get("module"), required=mode == "mdev")
    devices = tuple(_str(doc, f"lab.devices.{i}", d, required=True)
                    for i, d in enumerate(_list(doc, "lab.devices", data.get("devices"))))
    if mode == "pci" and not devices:
        raise doc.error("lab.devices", "is required in pci mode", "QEMU device roles, e.g. [edu0]")
    return LabTarget(mode, module, devices)
