"""A Debian trixie chroot with QEMU 10 (qemu-system-x86), built once by debootstrap into the lab cache.

The consumer lane runs this QEMU inside the lab guest (the host root, and so the cache, is the guest's
read-only lower layer) as the real migration client of the mdev devices. Nothing is installed on the
host: debootstrap writes only below the cache directory.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import LabError
from .lockfile import locked
from .proc import require_tool, run

SUITE = "trixie"
PACKAGES = ("qemu-system-x86",)
QEMU_BIN = "usr/bin/qemu-system-x86_64"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
MIRROR_ENV = "VFIO_LAB_DEBIAN_MIRROR"
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
#: debootstrap of minbase + qemu-system-x86 took about 35 s and 400 MB; allow a slow mirror.
DEBOOTSTRAP_TIMEOUT_S = 1200


@dataclass(frozen=True)
class QemuChroot:
    """An unpacked trixie root with QEMU; `version` is `qemu-system-x86_64 --version`'s first line."""

    root: Path
    version: str

    @property
    def qemu(self) -> str:
        """The QEMU binary's path inside the chroot."""
        return "/" + QEMU_BIN


def _source_uris(text: str) -> list[str]:
    """Archive URIs in one apt sources file (one-line `deb URI suite` or deb822 `URIs:` format)."""
    uris = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        one_line = re.match(r"deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s", line + " ")
        if one_line:
            uris.append(one_line.group(1))
        elif line.lower().startswith("uris:"):
            uris += line.split(":", 1)[1].split()
    return uris


def debian_mirror(sources: tuple[Path, ...] = APT_SOURCES, env: dict[str, str] | None = None) -> str:
    """The Debian archive mirror apt is configured with (VFIO_LAB_DEBIAN_MIRROR overrides it).

    The first URI whose path ends in `/debian` (the main archive, not debian-security) wins;
    without one, deb.debian.org.
    """
    env = os.environ if env is None else env
    if env.get(MIRROR_ENV):
        return env[MIRROR_ENV].rstrip("/")
    files: list[Path] = []
    for src in sources:
        if src.is_dir():
            files += sorted(p for p in src.iterdir() if p.suffix in (".list", ".sources"))
        elif src.is_file():
            files.append(src)
    for path in files:
        try:
            uris = _source_uris(path.read_text(errors="replace"))
        except OSError:
            continue
        for uri in uris:
            if uri.rstrip("/").endswith("/debian") and uri.startswith(("http://", "https://")):
                return uri.rstrip("/")
    return DEFAULT_MIRROR


def _version(root: Path) -> str:
    proc = subprocess.run(["chroot", str(root), "/" + QEMU_BIN, "--version"], capture_output=True,
                          text=True, timeout=60)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise LabError("build", f"QEMU in {root} does not run: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout.splitlines()[0].strip()


def prepare_qemu_chroot(cache_root: Path, mirror: str | None = None) -> QemuChroot:
    """Ensure `<cache_root>/qemu-trixie/root` holds trixie + qemu-system-x86; return it (cached)."""
    base = cache_root / f"qemu-{SUITE}"
    root, stamp = base / "root", base / "ready"
    if stamp.exists() and (root / QEMU_BIN).exists():
        return QemuChroot(root, stamp.read_text().strip())
    if os.geteuid() != 0:
        raise LabError("missing-tool", "building the QEMU chroot needs root (debootstrap)")
    debootstrap = require_tool("debootstrap")
    with locked(base / "build.lock"):
        if stamp.exists() and (root / QEMU_BIN).exists():
            return QemuChroot(root, stamp.read_text().strip())
        tmp = base / "root.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
        url = mirror or debian_mirror()
        t0 = time.monotonic()
        run([debootstrap, "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, tmp, url],
            kind="download", timeout=DEBOOTSTRAP_TIMEOUT_S)
        shutil.rmtree(tmp / "var" / "cache" / "apt" / "archives", ignore_errors=True)
        (tmp / "var" / "cache" / "apt" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        if not (tmp / QEMU_BIN).exists():
            raise LabError("download", f"debootstrap {SUITE} from {url} left no {QEMU_BIN}")
        tmp.rename(root)
        version = _version(root)
        stamp.write_text(version + "\n")
        (base / "build.log").write_text(f"mirror {url}\nseconds {time.monotonic() - t0:.1f}\n{version}\n")
    return QemuChroot(root, version)
