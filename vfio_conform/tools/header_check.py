"""Check the Python uAPI tables against real C headers with gcc: sizes, offsets, ioctls, constants.

`check(include_dir)` compiles a generated C program against `include_dir` (falling back to
/usr/include, as gcc does) and returns a `CheckReport`: items checked, mismatches
(Python value vs C value) and items the header does not define. `fetch_headers()` puts
Debian's 6.12 uAPI headers into a cache so the full 6.12 check can run anywhere.

    python3 -m vfio_conform.tools.header_check [--include DIR | --fetch] [--strict] [-v]
"""
from __future__ import annotations

import argparse
import ctypes
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator, TypeGuard

from ..base.debian import apt_download
from ..base.errors import InfraError
from ..uapi import enums as E
from ..uapi.ioctl import IOCTLS, VFIO_BASE, VFIO_TYPE
from ..uapi.structs import STRUCTS, vfio_region_info_cap_sparse_mmap_hdr

DEFAULT_KVER = "6.12.117+deb12"
SYSTEM_INCLUDE = Path("/usr/include")
HEADERS = ("linux/vfio.h", "linux/iommufd.h")
#: Headers the uapi files include that must come from the system (arch-specific asm/ behind them).
SYSTEM_ONLY = {"types.h", "ioctl.h"}
SETUP_HINT = "run scripts/setup.sh (as root) or 'python3 -m vfio_conform.tools.header_check --fetch'"

# --------------------------------------------------------------------------- items


@dataclasses.dataclass(frozen=True)
class Need:
    """Something the header must define: kind is 'struct', 'field' (name 'struct.field') or 'name'."""

    kind: str
    name: str

    def __str__(self) -> str:
        return {"struct": f"struct {self.name}", "field": f"field {self.name}"}.get(self.kind, self.name)


@dataclasses.dataclass(frozen=True)
class Item:
    """One value to compare: its label, the Python value and the C expression computing it."""

    label: str
    header: str
    expected: int
    expr: str
    needs: tuple[Need, ...]
    #: Fields whose absence explains a size mismatch (the header predates them).
    newer_fields: tuple[Need, ...] = ()


def _is_struct(ftype: object) -> TypeGuard[type[ctypes.Structure]]:
    return isinstance(ftype, type) and issubclass(ftype, ctypes.Structure)


def _walk(cls: type[ctypes.Structure], c_name: str, prefix: str = "",
          base: int = 0) -> Iterator[tuple[str, int, int, type, Need]]:
    """(path, offset, size, ctype, need) for every field, nested struct fields included."""
    for name, ftype, *_ in cls._fields_:
        desc = getattr(cls, name)
        path = prefix + name
        yield path, base + desc.offset, desc.size, ftype, Need("field", f"{c_name}.{name}")
        if _is_struct(ftype):
            yield from _walk(ftype, ftype.__name__, path + ".", base + desc.offset)


def _struct_items(cls: type, c_name: str, header: str, size_expr: str | None = None,
                  extra_needs: tuple[Need, ...] = ()) -> list[Item]:
    """Size of the struct plus offset, size and signedness of each field."""
    struct = Need("struct", c_name)
    fields = list(_walk(cls, c_name))
    top = tuple(need for path, *_, need in fields if "." not in path)
    items = [Item(f"sizeof({c_name})" if size_expr is None else f"{cls.__name__} size",
                  header, ctypes.sizeof(cls), size_expr or f"sizeof(struct {c_name})",
                  (struct,) + extra_needs, newer_fields=top)]
    for path, offset, size, ftype, _ in fields:
        needs = (struct,) + _path_needs(cls, c_name, path)
        member = f"((struct {c_name} *)0)->{path}"
        items.append(Item(f"{c_name}.{path} offset", header, offset,
                          f"offsetof(struct {c_name}, {path})", needs))
        items.append(Item(f"{c_name}.{path} size", header, size, f"sizeof({member})", needs))
        if not _is_struct(ftype):
            signed = int(ftype(-1).value < 0)
            items.append(Item(f"{c_name}.{path} signed", header, signed,
                              f"((__typeof__({member}))-1 < 0)", needs))
    return items


def _path_needs(cls: type[ctypes.Structure], c_name: str, path: str) -> tuple[Need, ...]:
    """Field needs along a dotted path (outer field, then the nested struct's field)."""
    needs = []
    for part in path.split("."):
        needs.append(Need("field", f"{c_name}.{part}"))
        ftype = dict((n, t) for n, t, *_ in cls._fields_)[part]
        if _is_struct(ftype):
            cls, c_name = ftype, ftype.__name__
    return tuple(needs)


def _constant_items() -> list[Item]:
    """Every enum member / constant of enums.py that has a C macro or C enum member."""
    families: list[tuple[Iterable[Any], str, str]] = [
        (E.MigState, "VFIO_DEVICE_STATE_{}", "linux/vfio.h"),
        (E.MigFlag, "VFIO_MIGRATION_{}", "linux/vfio.h"),
        (E.DeviceFlag, "VFIO_DEVICE_FLAGS_{}", "linux/vfio.h"),
        (E.RegionFlag, "VFIO_REGION_INFO_FLAG_{}", "linux/vfio.h"),
        (E.RegionCap, "VFIO_REGION_INFO_CAP_{}", "linux/vfio.h"),
        (E.RegionType, "VFIO_REGION_TYPE_{}", "linux/vfio.h"),
        (E.PciRegion, "VFIO_PCI_{}_REGION_INDEX", "linux/vfio.h"),
        (E.IrqFlag, "VFIO_IRQ_INFO_{}", "linux/vfio.h"),
        (E.Feature, "VFIO_DEVICE_FEATURE_{}", "linux/vfio.h"),
        (E.FeatureOp, "VFIO_DEVICE_FEATURE_{}", "linux/vfio.h"),
        (E.Extension, "VFIO_{}", "linux/vfio.h"),
        (E.GroupFlag, "VFIO_GROUP_FLAGS_{}", "linux/vfio.h"),
        (E.DmaMapFlag, "VFIO_DMA_MAP_FLAG_{}", "linux/vfio.h"),
        (E.V1State, "VFIO_DEVICE_STATE_V1_{}", "linux/vfio.h"),
    ]
    singles = [
        ("VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED", E.REGION_SUBTYPE_MIGRATION_DEPRECATED),
        ("VFIO_PCI_NUM_REGIONS", E.PCI_NUM_REGIONS),
        ("VFIO_DEVICE_FEATURE_MASK", E.FEATURE_MASK),
        ("VFIO_DEVICE_STATE_MASK", E.V1_STATE_MASK),
        ("VFIO_API_VERSION", E.VFIO_API_VERSION),
        ("VFIO_TYPE", VFIO_TYPE),
        ("VFIO_BASE", VFIO_BASE),
    ]
    items = []
    for family, pattern, header in families:
        for member in family:
            c_name = pattern.format(member.name)
            items.append(Item(c_name, header, int(member), c_name, (Need("name", c_name),)))
    for c_name, value in singles:
        items.append(Item(c_name, "linux/vfio.h", int(value), c_name, (Need("name", c_name),)))
    return items


def _ioctl_items() -> list[Item]:
    """The request number of every row of IOCTLS, names as in the C header."""
    return [Item(name, "linux/iommufd.h" if name.startswith("IOMMU_") else "linux/vfio.h",
                 row.number, name, (Need("name", name),)) for name, row in IOCTLS.items()]


def all_items() -> list[Item]:
    """Every item the check compares, structs first."""
    items: list[Item] = []
    for c_name, (cls, header) in STRUCTS.items():
        items += _struct_items(cls, c_name, header)
    sparse = "vfio_region_info_cap_sparse_mmap"
    items += _struct_items(vfio_region_info_cap_sparse_mmap_hdr, sparse, "linux/vfio.h",
                           size_expr=f"offsetof(struct {sparse}, areas)",
                           extra_needs=(Need("field", f"{sparse}.areas"),))
    return items + _ioctl_items() + _constant_items()

# --------------------------------------------------------------------------- header text


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


class HeaderText:
    """What a set of header files defines, found by scanning their text (no preprocessor)."""

    def __init__(self, texts: Iterable[str]):
        self.text = "\n".join(_strip_comments(t) for t in texts)
        self.macros = set(re.findall(r"^\s*#\s*define\s+(\w+)", self.text, flags=re.M))
        self.enum_members: set[str] = set()
        for body in re.findall(r"\benum\b\s*\w*\s*\{([^}]*)\}", self.text):
            for entry in body.split(","):
                m = re.match(r"\s*([A-Za-z_]\w*)", entry)
                if m:
                    self.enum_members.add(m.group(1))

    def struct_body(self, name: str) -> str | None:
        """Text between the braces of `struct name {...}`, or None."""
        m = re.search(r"\bstruct\s+" + re.escape(name) + r"\s*\{", self.text)
        if not m:
            return None
        depth, i = 1, m.end()
        while depth and i < len(self.text):
            depth += {"{": 1, "}": -1}.get(self.text[i], 0)
            i += 1
        return self.text[m.end():i - 1]

    def has(self, need: Need) -> bool:
        if need.kind == "struct":
            return self.struct_body(need.name) is not None
        if need.kind == "field":
            struct, field = need.name.split(".")
            body = self.struct_body(struct)
            return body is not None and re.search(r"\b" + re.escape(field) + r"\s*[\[;,]", body) is not None
        return need.name in self.macros or need.name in self.enum_members

# --------------------------------------------------------------------------- report


@dataclasses.dataclass(frozen=True)
class Mismatch:
    """An item whose C value differs; `note` explains it when the header predates a field."""

    label: str
    python: int
    c: int
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Absent:
    label: str
    missing: str


@dataclasses.dataclass
class CheckReport:
    """Outcome of one check against one include directory."""

    include_dir: Path
    headers: dict[str, Path]
    checked: list[str] = dataclasses.field(default_factory=list)
    mismatches: list[Mismatch] = dataclasses.field(default_factory=list)
    absent: list[Absent] = dataclasses.field(default_factory=list)

    @property
    def unexplained(self) -> list[Mismatch]:
        """Mismatches not explained by an older header or an argsz extension: real errors in the tables."""
        return [m for m in self.mismatches if not m.note]

    def passed(self, strict: bool) -> bool:
        """Strict: everything present and equal. Otherwise: no unexplained mismatch."""
        if strict:
            return not self.mismatches and not self.absent
        return not self.unexplained

    def summary(self) -> str:
        return (f"{self.include_dir}: {len(self.checked)} items checked, "
                f"{len(self.unexplained)} mismatches, "
                f"{len(self.mismatches) - len(self.unexplained)} explained (an older header, or an argsz "
                f"extension), "
                f"{len(self.absent)} absent")

    def table(self, verbose: bool = False) -> str:
        """Readable table: problems always, matching items with verbose."""
        rows = [("STATUS", "ITEM", "PYTHON", "C", "NOTE")]
        bad = {m.label: m for m in self.mismatches}
        for label in self.checked:
            if label in bad:
                m = bad[label]
                rows.append((("EXTENDED" if m.note.startswith("argsz") else "OLDER") if m.note else "MISMATCH", label, str(m.python), str(m.c), m.note))
            elif verbose:
                rows.append(("ok", label, "", "", ""))
        if verbose:
            rows += [("ABSENT", a.label, "", "", f"header lacks {a.missing}") for a in self.absent]
        else:
            groups: dict[str, list[str]] = {}
            for a in self.absent:
                groups.setdefault(a.missing, []).append(a.label)
            rows += [("ABSENT", labels[0] if len(labels) == 1 else f"{len(labels)} items",
                      "", "", f"header lacks {missing}") for missing, labels in groups.items()]
        if len(rows) == 1:
            return f"all {len(self.checked)} items match\n" + self.summary()
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4] for r in rows]
        return "\n".join(line.rstrip() for line in lines) + "\n" + self.summary()

# --------------------------------------------------------------------------- compile and run


def resolve_headers(include_dir: Path) -> dict[str, Path]:
    """header name -> file gcc will use (include_dir first, then /usr/include); missing ones left out."""
    found = {}
    for header in HEADERS:
        for root in (Path(include_dir), SYSTEM_INCLUDE):
            if (root / header).is_file():
                found[header] = root / header
                break
    return found


def c_program(items: list[Item], headers: Iterable[str]) -> str:
    """A C program printing `label<TAB>value` for every item."""
    lines = ["#include <stddef.h>", "#include <stdio.h>"]
    lines += [f"#include <{h}>" for h in headers]
    lines += ["", "int main(void)", "{"]
    lines += [f'\tprintf("%s\\t%lld\\n", "{it.label}", (long long)({it.expr}));' for it in items]
    lines += ["\treturn 0;", "}", ""]
    return "\n".join(lines)


def _compile_and_run(source: str, include_dir: Path) -> dict[str, int]:
    gcc = shutil.which("gcc")
    if not gcc:
        raise InfraError(f"gcc not found: {SETUP_HINT}")
    with tempfile.TemporaryDirectory(prefix="vfio-conform-hdr-") as tmp:
        src, exe = Path(tmp) / "check.c", Path(tmp) / "check"
        src.write_text(source)
        proc = subprocess.run([gcc, "-std=gnu11", "-O0", "-I", str(include_dir), "-o", str(exe), str(src)],
                              capture_output=True, text=True, timeout=120)
        if proc.returncode:
            raise InfraError(f"gcc failed on the generated check program against {include_dir}:\n"
                             f"{proc.stderr[-4000:]}")
        out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, check=True).stdout
    return {label: int(value) for label, value in (line.split("\t") for line in out.splitlines())}


def _argsz_extended(label: str, expected: int, got: int, text: HeaderText) -> str:
    """A note when a struct that begins with `argsz` grew at its end in this header: the kernel takes
    any argsz from the size it first had (its minsz), so the tables' smaller layout stays valid and
    the new fields are unused, not wrong. Every field the tables know is checked on its own."""
    match = re.fullmatch(r"sizeof\((\w+)\)", label)
    body = text.struct_body(match.group(1)) if match else None
    if body is None or got <= expected or not re.match(r"\s*__u32\s+argsz\s*;", body):
        return ""
    return f"argsz-extended in this header ({expected} -> {got} bytes): the older size is still accepted"


def check(include_dir: str | Path = SYSTEM_INCLUDE) -> CheckReport:
    """Compare every item with the headers under `include_dir`; absent items are listed, not compiled."""
    include_dir = Path(include_dir)
    headers = resolve_headers(include_dir)
    report = CheckReport(include_dir, headers)
    if not headers:
        raise InfraError(f"no linux/vfio.h under {include_dir} or {SYSTEM_INCLUDE}: "
                         f"install linux-libc-dev ({SETUP_HINT})")
    texts = {h: HeaderText([p.read_text(errors="replace")]) for h, p in headers.items()}
    present: list[Item] = []
    for item in all_items():
        text = texts.get(item.header)
        if text is None:
            report.absent.append(Absent(item.label, f"<{item.header}>"))
            continue
        missing = [n for n in item.needs if not text.has(n)]
        if missing:
            report.absent.append(Absent(item.label, str(missing[0])))
        else:
            present.append(item)
    values = _compile_and_run(c_program(present, headers), include_dir)
    for item in present:
        report.checked.append(item.label)
        got = values[item.label]
        if got != item.expected:
            lacks = [n.name.split(".", 1)[1] for n in item.newer_fields if not texts[item.header].has(n)]
            note = f"header older than 6.12 (lacks {', '.join(lacks)})" if lacks else ""
            report.mismatches.append(Mismatch(item.label, item.expected, got, note))
    # a struct that only grew at its end (each of its fields as the tables have it) after argsz
    fields_off = {m.label.split(".")[0] for m in report.mismatches if "." in m.label}
    header_of = {item.label: item.header for item in present}
    report.mismatches = [
        dataclasses.replace(m, note=_argsz_extended(m.label, m.python, m.c, texts[header_of[m.label]]))
        if not m.note and m.label.startswith("sizeof(") and m.label[7:-1] not in fields_off else m
        for m in report.mismatches]
    return report

# --------------------------------------------------------------------------- 6.12 headers from Debian


def cache_dir(kver: str = DEFAULT_KVER) -> Path:
    """`${XDG_CACHE_HOME:-~/.cache}/vfio-conform/uapi/<upstream version>` (e.g. 6.12.117)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "vfio-conform" / "uapi" / kver.split("+")[0]


def cached_headers(kver: str = DEFAULT_KVER) -> Path | None:
    """Include dir of a complete cached copy, or None."""
    root = cache_dir(kver)
    return root / "include" if (root / "SOURCE").is_file() else None


def _sanitize(text: str) -> str:
    """What the kernel's scripts/headers_install.sh does to a uapi header (drop __user etc.)."""
    text = re.sub(r"([\s(])(__user|__force|__iomem)\s", r"\1", text)
    text = re.sub(r"__attribute_const__(\s|$)", r"\1", text)
    text = re.sub(r"^#include <linux/compiler(|_types)\.h>", "", text, flags=re.M)
    text = re.sub(r"(^|[^a-zA-Z0-9])__packed([^a-zA-Z0-9_]|$)", r"\1__attribute__((packed))\2", text)
    return re.sub(r"#(ifndef|define|endif[ \t]*/[*])[ \t]*_UAPI", r"#\1 ", text)


def _extract_uapi(deb: Path, dest: Path) -> list[str]:
    """Copy linux/{vfio,iommufd}.h and the uapi headers they include (not types.h/ioctl.h) to dest."""
    tar_path = deb.with_suffix(".tar")
    with open(tar_path, "wb") as out:
        try:
            subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=out, stderr=subprocess.PIPE,
                           check=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as exc:
            raise InfraError(f"dpkg-deb --fsys-tarfile {deb.name} failed: {exc}") from exc
    pattern = re.compile(r"\./usr/src/linux-headers-[^/]+-common/include/uapi/linux/([\w.-]+\.h)$")
    with tarfile.open(tar_path) as tar:
        available = {m.group(1): member for member in tar.getmembers()
                     if (m := pattern.match(member.name))}
        wanted, kept = [Path(h).name for h in HEADERS], []
        while wanted:
            name = wanted.pop()
            if name in kept or name in SYSTEM_ONLY or name not in available:
                continue
            member = tar.extractfile(available[name])
            if member is None:          # a link or a directory, not the header's text
                continue
            text = member.read().decode()
            (dest / "linux" / name).write_text(_sanitize(text))
            kept.append(name)
            wanted += re.findall(r"^#include <linux/([\w.-]+\.h)>", text, flags=re.M)
    if "vfio.h" not in kept:
        raise InfraError(f"{deb.name} has no include/uapi/linux/vfio.h")
    return sorted(kept)


def fetch_headers(kver: str = DEFAULT_KVER, force: bool = False) -> Path:
    """Download linux-headers-<kver>-common with apt-get and cache its uapi headers; return the include dir."""
    if not force and (done := cached_headers(kver)):
        return done
    root, package = cache_dir(kver), f"linux-headers-{kver}-common"
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fetch-", dir=root.parent) as tmp:
        work = Path(tmp)
        try:
            deb = apt_download(package, work)
        except InfraError as exc:
            raise InfraError(f"{exc} ({SETUP_HINT})") from exc
        staged = work / "tree"
        (staged / "include" / "linux").mkdir(parents=True)
        kept = _extract_uapi(deb, staged / "include")
        (staged / "SOURCE").write_text(f"{deb.name}\n" + "".join(f"include/linux/{k}\n" for k in kept))
        if root.exists():
            shutil.rmtree(root)
        staged.rename(root)
    return root / "include"

# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m vfio_conform.tools.header_check",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--include", type=Path, help="include dir to check (default /usr/include)")
    parser.add_argument("--fetch", action="store_true",
                        help="fetch (if not cached) and check the Debian 6.12 uAPI headers; implies --strict")
    parser.add_argument("--kernel", default=DEFAULT_KVER, help=f"Debian kernel ABI (default {DEFAULT_KVER})")
    parser.add_argument("--strict", action="store_true", help="fail on absent items and older-header mismatches")
    parser.add_argument("-v", "--verbose", action="store_true", help="list matching items too")
    args = parser.parse_args(argv)
    try:
        if args.fetch:
            include, strict = fetch_headers(args.kernel), True
            print(f"6.12 uAPI headers: {include}")
        else:
            include, strict = args.include or SYSTEM_INCLUDE, args.strict
        report = check(include)
    except InfraError as exc:
        print(f"header_check: {exc}", file=sys.stderr)
        return 2
    print(report.table(args.verbose))
    return 0 if report.passed(strict) else 1


if __name__ == "__main__":
    sys.exit(main())
