"""Where a kernel's out-of-tree modules are built: on the host, or in a trixie build chroot.

A kernel's headers name the compiler it was built with (`CC = ... gcc-14` in Debian's
.kernelvariables), and its kbuild tools link against that release's glibc (7.x from
trixie-backports: modpost and objtool need GLIBC_2.38; bookworm has 2.36). When the host lacks
that compiler, the modules are built in a Debian trixie chroot (debootstrap, once, into the lab
cache) with `make` run under `unshare -m` and `chroot`: the kernel tree is bind-mounted at its
own path inside the chroot, in a private mount namespace, so the host's mounts never change.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import time
from pathlib import Path

from .errors import LabError
from .lockfile import locked
from .packages import KernelTree
from .proc import require_tool, run
from .qemu_chroot import debian_mirror

SUITE = "trixie"
#: What kbuild needs to build an external module (BTF left out: no pahole).
PACKAGES = ("make", "gcc-14", "libc6-dev", "libelf1t64", "zlib1g", "libssl3t64")
DEBOOTSTRAP_TIMEOUT_S = 1800


def kernel_compiler(tree: KernelTree) -> str:
    """The compiler the kernel's headers ask for (e.g. gcc-14), '' when they name none."""
    variables = tree.headers_dir / ".kernelvariables"
    if not variables.exists():
        return ""
    m = re.search(r"^CC\s*=.*?\b(gcc-\d+)\b", variables.read_text(), re.M)
    return m.group(1) if m else ""


def needs_chroot(tree: KernelTree) -> bool:
    """True when the host lacks the compiler the kernel's headers name."""
    cc = kernel_compiler(tree)
    return bool(cc) and shutil.which(f"x86_64-linux-gnu-{cc}") is None and shutil.which(cc) is None


def prepare_build_chroot(cache_root: Path, mirror: str | None = None) -> Path:
    """Ensure `<cache_root>/build-trixie/root` holds trixie with gcc-14 and make; return it."""
    base = cache_root / f"build-{SUITE}"
    root, stamp = base / "root", base / "ready"
    if stamp.exists():
        return root
    if os.geteuid() != 0:
        raise LabError("missing-tool", "building modules for this kernel needs a trixie build "
                       "chroot, and debootstrap needs root")
    debootstrap = require_tool("debootstrap")
    with locked(base / "build.lock"):
        if stamp.exists():
            return root
        tmp = base / "root.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        url = mirror or debian_mirror()
        t0 = time.monotonic()
        print(f"vfio-conform lab: building the {SUITE} build chroot ({', '.join(PACKAGES)}) in {base}",
              flush=True)
        run([debootstrap, "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, tmp, url],
            kind="download", timeout=DEBOOTSTRAP_TIMEOUT_S)
        shutil.rmtree(tmp / "var" / "cache" / "apt" / "archives", ignore_errors=True)
        if not (tmp / "usr" / "bin" / "x86_64-linux-gnu-gcc-14").exists():
            raise LabError("download", f"debootstrap {SUITE} from {url} left no gcc-14")
        shutil.rmtree(root, ignore_errors=True)
        tmp.rename(root)
        stamp.write_text(f"mirror {url}\nseconds {time.monotonic() - t0:.1f}\n")
    return root


def make_argv(tree: KernelTree, args: list[str], cache_root: Path) -> list[str]:
    """argv running `make ARGS` for `tree`: plain on the host, or in the build chroot."""
    if not needs_chroot(tree):
        return ["make", *args]
    root = prepare_build_chroot(cache_root)
    inside = root / str(tree.root).lstrip("/")
    script = (f"mkdir -p {shlex.quote(str(inside))} && "
              f"mount --bind {shlex.quote(str(tree.root))} {shlex.quote(str(inside))} && "
              f"mount -t proc proc {shlex.quote(str(root / 'proc'))} && "
              f"exec chroot {shlex.quote(str(root))} make {' '.join(shlex.quote(a) for a in args)}")
    return [require_tool("unshare"), "-m", "--propagation", "private", "sh", "-c", script]
