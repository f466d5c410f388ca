"""Name a Debian kernel (`6.12`, `7.3.4`, `6.1.0-57`, `lts`, `latest`) and get the lab's KernelSpec.

The archives the private apt configuration carries (qemu_lab/archive.py) are the only source: a name
resolves to the newest build it matches, with the packages the lab needs (image, headers, kbuild,
linux-source for mtty) pinned to that build's Debian version. Two package layouts exist: the
image package holding vmlinuz and the modules (`linux-image-<kver>[-unsigned]`, up to 6.19) and,
newer, `linux-binary-<kver>` + `linux-modules-<kver>` + `linux-base-<kver>`.
"""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from ..base.errors import ConfigError
from .archive import PackageInfo, PrivateApt
from .config import KernelSpec
from .errors import LabError

FLAVOUR = "amd64"
#: kernel.org's longterm series; `lts` is the newest of these the archives carry.
LTS_SERIES = ("5.10", "5.15", "6.1", "6.6", "6.12", "6.18")
ALIASES = ("latest", "lts")
_IMAGE = re.compile(r"linux-(?P<kind>image|binary)-(?P<abi>\d+\.\d+(?:\.\d+)?(?:-\d+|\+deb\d+))"
                    rf"-{FLAVOUR}(?P<unsigned>-unsigned)?")
#: Disk needed besides the downloads: the unpacked tree and the module builds (bytes).
BUILD_MARGIN = 200 * 2**20


class UnknownKernel(ConfigError):
    """The name matches no kernel the archives carry (exit 2, nothing fetched)."""


class IncompleteKernel(ConfigError):
    """The archives carry the kernel's image but not a package the lab needs (exit 2)."""


class DiskSpace(LabError):
    """Too little free disk for the kernel's downloads and unpacked tree."""

    def __init__(self, message: str) -> None:
        super().__init__("download", message)


@dataclass(frozen=True)
class ArchiveKernel:
    """One kernel build the archives carry: its ABI, image package and upstream release."""

    abi: str
    image: PackageInfo
    layout: str          # "split" (linux-binary/modules/base) or "image"

    @property
    def kver(self) -> str:
        return f"{self.abi}-{FLAVOUR}"

    @property
    def release(self) -> str:
        return self.image.version.split(":")[-1].split("-")[0]

    @property
    def series(self) -> str:
        return ".".join(self.release.split(".")[:2])


def _release_key(release: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", release))


def image_names(names: list[str]) -> dict[str, tuple[str, str]]:
    """{abi: (image package, layout)} from package names: linux-binary (split layout) first,
    then the unsigned image, then the signed one."""
    found: dict[str, tuple[int, str, str]] = {}
    for name in names:
        m = _IMAGE.fullmatch(name)
        if not m:
            continue
        rank = 0 if m["kind"] == "binary" else 1 if m["unsigned"] else 2
        if m["abi"] not in found or rank < found[m["abi"]][0]:
            found[m["abi"]] = (rank, name, "split" if rank == 0 else "image")
    return {abi: (name, layout) for abi, (_, name, layout) in found.items()}


def available(apt: PrivateApt) -> list[ArchiveKernel]:
    """Every amd64 kernel build the archives carry, oldest release first (kept in
    `<apt root>/kernels.json` until the package lists are fetched again)."""
    index = apt.root / "kernels.json"
    try:
        data = json.loads(index.read_text())
        if data["lists"] == apt.lists_stamp and data["lists"]:
            return [ArchiveKernel(k["abi"], PackageInfo(**k["image"]), k["layout"])
                    for k in data["kernels"]]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    images = image_names(apt.package_names(r"linux-(image|binary)-[0-9].*"))
    infos = apt.show_many([name for name, _ in images.values()])
    out = sorted((ArchiveKernel(abi, infos[name], layout) for abi, (name, layout) in images.items()
                  if name in infos), key=lambda k: (_release_key(k.release), k.abi))
    tmp = index.with_suffix(".tmp")
    index.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(json.dumps({"lists": apt.lists_stamp, "kernels": [asdict(k) for k in out]}))
    tmp.replace(index)
    return out


def pick(kernels: list[ArchiveKernel], name: str, host_tag: str = "") -> ArchiveKernel:
    """The build `name` means among `kernels` (newest match; on a tie the host's Debian release).

    Raises UnknownKernel listing what the archives carry."""
    want = name.strip().removesuffix(f"-{FLAVOUR}")
    if want == "latest":
        matches = kernels
    elif want == "lts":
        matches = [k for k in kernels if k.series in LTS_SERIES]
    elif exact := [k for k in kernels if k.abi == want]:
        matches = exact
    elif re.fullmatch(r"\d+\.\d+", want):
        matches = [k for k in kernels if k.series == want]
    elif re.fullmatch(r"\d+\.\d+\.\d+", want):
        matches = [k for k in kernels if k.release == want]
    else:
        matches = []
    if not matches:
        raise UnknownKernel(f"unknown kernel {name!r}; the archives carry: {listing(kernels)} "
                            f"(or an alias: {', '.join(ALIASES)})", field="--kernel")
    best = max(_release_key(k.release) for k in matches)
    top = [k for k in matches if _release_key(k.release) == best]
    return next((k for k in top if host_tag and k.abi.endswith(host_tag)), top[-1])


def listing(kernels: list[ArchiveKernel]) -> str:
    """`6.1 (6.1.192), 6.12 (6.12.100 .. 6.12.118), ...`: the series and their releases."""
    series: dict[str, list[str]] = {}
    for k in kernels:
        series.setdefault(k.series, [])
        if k.release not in series[k.series]:
            series[k.series].append(k.release)
    parts = []
    for s, rel in series.items():
        parts.append(f"{s} ({rel[0]})" if len(rel) == 1 else f"{s} ({rel[0]} .. {rel[-1]})")
    return ", ".join(parts)


def needed_packages(kernel: ArchiveKernel) -> tuple[list[str], list[str], str]:
    """(image packages, header/kbuild package candidates, source package) of `kernel`.

    Each header/kbuild entry may be `a|b`: the first the archive has is used (6.1's kbuild is
    per series, later ones per ABI)."""
    kver, abi = kernel.kver, kernel.abi
    image = ([f"linux-binary-{kver}", f"linux-modules-{kver}", f"linux-base-{kver}"]
             if kernel.layout == "split" else [kernel.image.name])
    headers = [f"linux-headers-{kver}", f"linux-headers-{abi}-common",
               f"linux-kbuild-{abi}|linux-kbuild-{kernel.series}"]
    return image, headers, f"linux-source-{kernel.series}"


def spec_for(apt: PrivateApt, kernel: ArchiveKernel) -> tuple[KernelSpec, list[PackageInfo]]:
    """The lab's KernelSpec of `kernel` and the package versions it needs.

    Raises IncompleteKernel naming every package the archives lack at the image's version."""
    image, headers, source = needed_packages(kernel)
    entries = image + headers + [source]
    apt.records([alt for entry in entries for alt in entry.split("|")])    # one apt-cache call
    infos: list[PackageInfo] = []
    missing: list[str] = []
    for entry in entries:
        choice = None
        for alt in entry.split("|"):
            if (choice := apt.show(alt, kernel.image.version)) is not None:
                break
        if choice is None:
            missing.append(f"{entry.split('|')[0]} (= {kernel.image.version})")
        else:
            infos.append(choice)
    if missing:
        raise IncompleteKernel(f"kernel {kernel.kver}: the archives lack {', '.join(missing)} "
                               "(the headers build mtty and are checked; linux-source holds mtty.c)",
                               field="--kernel")
    spec = KernelSpec(abi=kernel.abi, flavour=FLAVOUR, source_series=kernel.series,
                      packages=tuple(i.name for i in infos), version=kernel.image.version,
                      source_version=kernel.image.version, archive=str(apt.root))
    return spec, infos


def host_tag() -> str:
    """`+deb12` on a Debian 12 host (its kbuild tools run there), else ''."""
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return ""
    m = re.search(r'^VERSION_ID="?(\d+)', text, re.M)
    return f"+deb{m.group(1)}" if m and "debian" in text.lower() else ""


def check_disk(infos: list[PackageInfo], where: Path, source: str) -> int:
    """Bytes the kernel needs in `where` (downloads + unpacked, linux-source streamed, not
    unpacked); raises DiskSpace with the figure when less is free."""
    need = BUILD_MARGIN + sum(i.size + (0 if i.name == source else i.installed_size) for i in infos)
    where.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(where).free
    if free < need:
        raise DiskSpace(f"too little disk for the kernel: {mib(need)} needed in {where}, "
                        f"{mib(free)} free")
    return need


def mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB"


def resolve(name: str, cache_root: Path, *, update: bool = True) -> tuple[KernelSpec, list[PackageInfo]]:
    """Resolve `name` through the private apt configuration under `cache_root/apt`."""
    apt = PrivateApt(cache_root / "apt")
    if update:
        apt.update()
    kernels = available(apt)
    kernel = pick(kernels, name, host_tag())
    if name.strip() not in ALIASES:
        return spec_for(apt, kernel)
    # an alias means the newest build of its kind the archives carry whole (trixie-backports
    # drops a superseded kernel's headers and source before its images)
    first: IncompleteKernel | None = None
    tag = host_tag()
    for cand in sorted((k for k in kernels if name.strip() == "latest" or k.series in LTS_SERIES),
                       key=lambda k: (_release_key(k.release), bool(tag) and k.abi.endswith(tag)),
                       reverse=True):
        try:
            return spec_for(apt, cand)
        except IncompleteKernel as exc:
            first = first or exc
    raise first or IncompleteKernel(f"no whole kernel for {name!r}", field="--kernel")


def describe(spec: KernelSpec) -> str:
    """`7.3.4 (7.3.4+deb13-amd64, Debian 7.3.4-1~bpo13+1)`."""
    version = spec.version or "pinned default"
    return f"{spec.release} ({spec.kver}, Debian {version})"


