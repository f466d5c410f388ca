"""What of the host the lab guest sees: a few read-only 9p shares, never the host's root.

The guest's root is a tmpfs. Into it the guest init (qemu_lab/guest_init.sh) mounts, each at its host
path and each under a tmpfs overlay (writes stay in the guest): /usr (the interpreter's libraries,
the tools guest.py runs: insmod, modprobe, dmesg, tar), the Python installation that runs the
harness, the checkout, the harness's caches (the lab's kernel tree and modules among them), and
any directory a run names (a profile outside the checkout). /bin, /sbin, /lib* are the host's
symlinks into /usr (or shares of their own on a host without a merged /usr). /etc is a copy of
the few files a dynamically linked program and Python need (no /etc/shadow, no keys); /root, /home,
/var, /tmp and the rest of the host are not there.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import LabError

#: Top-level names that merged-/usr hosts make symlinks into /usr (else they are shared as dirs).
ROOT_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
#: The /etc files the guest gets a copy of (what ld.so, libc's name service and Python read).
ETC_FILES = ("passwd", "group", "nsswitch.conf", "host.conf", "hosts", "ld.so.cache", "ld.so.conf",
             "ld.so.conf.d", "os-release", "localtime", "protocols", "services")


@dataclass(frozen=True)
class Share:
    """One read-only host directory, mounted at the same path in the guest."""

    tag: str
    path: str


@dataclass(frozen=True)
class GuestView:
    """The shares, and the top-level symlinks the guest creates (name -> target)."""

    shares: tuple[Share, ...]
    links: tuple[tuple[str, str], ...]

    def boot_env(self) -> str:
        """The boot.env lines guest_init.sh reads (space-separated `tag=path` and `name=target`)."""
        shares = " ".join(f"{s.tag}={s.path}" for s in self.shares)
        links = " ".join(f"{n}={t}" for n, t in self.links)
        return f"LAB_SHARES='{shares}'\nLAB_LINKS='{links}'\n"


def python_prefixes(python: str) -> list[str]:
    """The installation directories of interpreter `python` (its prefix and base prefix)."""
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        return [sys.prefix, sys.base_prefix]
    try:
        out = subprocess.run([python, "-c", "import sys; print(sys.prefix); print(sys.base_prefix)"],
                             capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise LabError("guest-setup", f"cannot ask {python} for its installation: {exc}") from None
    return out.split()


def plan_view(paths: list[str | Path], root: Path = Path("/")) -> GuestView:
    """The shares for `paths` (absolute host directories) plus /usr and the top-level dirs;
    a path inside another share is not shared again; the host root itself never is."""
    links, wanted = [], [root / "usr"]
    for name in ROOT_LINKS:
        top = root / name
        if top.is_symlink():
            links.append((name, os.readlink(top)))
        elif top.is_dir():
            wanted.append(top)
    candidates = []
    for p in [*wanted, *(Path(p) for p in paths)]:
        for form in dict.fromkeys((os.path.abspath(p), os.path.realpath(p))):
            if os.path.isdir(form):
                candidates.append(form)
    keep: list[str] = []
    for path in sorted(set(candidates), key=lambda p: (p.count("/"), p)):
        if path == os.path.abspath(root):
            raise LabError("guest-setup", "the lab guest may not see the host's root directory")
        if any(c in path for c in " ,='\"\n"):
            raise LabError("guest-setup", f"a lab share path may not contain spaces, commas, "
                                          f"quotes or '=': {path}")
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in keep):
            keep.append(path)
    return GuestView(tuple(Share(f"ro{i}", p) for i, p in enumerate(keep)), tuple(links))


def stage_etc(target: Path, etc: Path = Path("/etc")) -> None:
    """Copy the ETC_FILES that exist into `target` (symlinks into /usr kept as symlinks)."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name in ETC_FILES:
        src = etc / name
        if src.is_dir() and not src.is_symlink():
            shutil.copytree(src, target / name, symlinks=True)
        elif src.is_symlink():
            dest = os.readlink(src)
            # os-release -> ../usr/lib/os-release resolves inside the guest too; keep it
            os.symlink(dest, target / name)
        elif src.is_file():
            shutil.copy2(src, target / name)
