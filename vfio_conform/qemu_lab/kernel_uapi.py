"""The uAPI header check against one lab kernel's own headers, and what that kernel's uAPI adds.

The kernel's linux-headers-<abi>-common (unpacked in its lab cache) holds include/uapi; the VFIO
and IOMMUFD headers and the uapi headers they include are staged as headers_install would
install them, then tools/header_check.py compares the harness's tables with them. Every macro and
struct of those headers that the reference kernel's headers (6.12) lack is listed as new: the
harness's tables do not model it, so it is reported not-supported with that reason.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..tools.header_check import HEADERS, SYSTEM_ONLY, CheckReport, _sanitize, cached_headers, check, fetch_headers
from .config import KernelSpec, LabConfig
from .errors import LabError
from .packages import KernelTree

#: Identifiers of a uapi header: macros and structs (enum constants appear as macros or as
#: `NAME = value,` lines, taken too).
_IDENT = re.compile(r"^#define\s+([A-Z][A-Z0-9_]+)|^struct\s+(\w+)\s*\{|^\s+([A-Z][A-Z0-9_]+)\s*(?:=[^=]|,)",
                    re.M)


@dataclass
class KernelUapi:
    """One kernel's header check and the identifiers it has beyond the reference headers."""

    kver: str
    report: CheckReport
    new: dict[str, list[str]] = field(default_factory=dict)      # header -> identifiers
    gone: dict[str, list[str]] = field(default_factory=dict)     # in the reference only

    def lines(self, reference: str) -> list[str]:
        out = [f"uAPI headers of {self.kver}: {self.report.summary()}"]
        for header, names in self.new.items():
            for name in names:
                out.append(f"  not-supported {header}: {name}: new since {reference}; the harness's "
                           "uAPI tables (vfio_conform/uapi) do not model it")
        for header, names in self.gone.items():
            out.append(f"  absent        {header}: {len(names)} identifier(s) of {reference} "
                       f"(e.g. {', '.join(names[:4])}): not in this kernel's headers")
        return out


def uapi_dir(tree: KernelTree) -> Path:
    """include/uapi of the kernel's unpacked -common headers."""
    found = sorted((tree.sysroot / "usr" / "src").glob("linux-headers-*-common/include/uapi"))
    if not found:
        raise LabError("download", f"no linux-headers-*-common/include/uapi under {tree.sysroot}")
    return found[0]


def stage(uapi: Path, dest: Path) -> Path:
    """Copy linux/{vfio,iommufd}.h and the uapi headers they include, sanitized, to dest/linux;
    return dest (an include dir for header_check.check)."""
    wanted, kept = [Path(h).name for h in HEADERS], set()
    (dest / "linux").mkdir(parents=True, exist_ok=True)
    while wanted:
        name = wanted.pop()
        src = uapi / "linux" / name
        if name in kept or name in SYSTEM_ONLY or not src.is_file():
            continue
        text = src.read_text(errors="replace")
        (dest / "linux" / name).write_text(_sanitize(text))
        kept.add(name)
        wanted += re.findall(r"^#include <linux/([\w.-]+\.h)>", text, flags=re.M)
    if "vfio.h" not in kept:
        raise LabError("download", f"{uapi} has no linux/vfio.h")
    return dest


def identifiers(text: str) -> set[str]:
    return {next(g for g in m.groups() if g) for m in _IDENT.finditer(text)}


def compare(include: Path, reference: Path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(new, gone): identifiers of each header in `include` but not in `reference`, and back."""
    new, gone = {}, {}
    for header in HEADERS:
        mine = identifiers(p.read_text()) if (p := include / header).is_file() else set()
        ref = identifiers(p.read_text()) if (p := reference / header).is_file() else set()
        if mine - ref:
            new[header] = sorted(mine - ref)
        if ref - mine:
            gone[header] = sorted(ref - mine)
    return new, gone


def check_kernel(tree: KernelTree, reference: Path | None) -> KernelUapi:
    """Run the header check on `tree`'s headers; list what they add to (or lack from) `reference`."""
    include = stage(uapi_dir(tree), tree.root / "uapi" / "include")
    result = KernelUapi(tree.spec.kver, check(include))
    if reference is not None:
        result.new, result.gone = compare(include, reference)
    return result


def check_kernel_spec(spec: KernelSpec) -> KernelUapi:
    """`check_kernel` on a Debian kernel's own headers (fetched and unpacked as the lab does),
    against the 6.12 reference headers; LabError when they cannot be had."""
    from .packages import prepare_kernel
    tree = prepare_kernel(spec, LabConfig(kernel=spec).kernel_cache)
    return check_kernel(tree, cached_headers() or fetch_headers())
