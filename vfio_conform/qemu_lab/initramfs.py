"""Build the busybox-static initramfs that mounts the 9p shares and starts guest.py."""
from __future__ import annotations

import hashlib
import lzma
import shutil
import subprocess
from pathlib import Path

from .errors import LabError
from .lockfile import locked
from .packages import KernelTree
from .proc import INSTALL_HINT, require_tool, run

STAGE1_MODULES = ("netfs", "9pnet", "9pnet_virtio", "9p", "overlay")
#: Built into 6.12's and 7.3's Debian kernels, modules in others (6.1): loaded first where they are
#: modules. virtio_console carries the guest's output channels (qemu_lab/channels.py): without it the
#: guest falls back to files on the share, which QEMU (running as nobody) already holds as root's.
STAGE1_IF_MODULE = ("virtio_pci", "virtio_console")
INIT_SCRIPT = Path(__file__).with_name("guest_init.sh")
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")


def _find_busybox() -> Path:
    """Return a statically linked busybox, or raise LabError saying what to install."""
    for cand in BUSYBOX_CANDIDATES:
        path = Path(cand)
        if path.exists() and b"statically linked" in subprocess.run(
                ["file", "-L", str(path)], capture_output=True).stdout:
            return path
        if path.exists() and shutil.which("file") is None:
            return path
    raise LabError("missing-tool", f"no statically linked busybox found; {INSTALL_HINT} "
                   "(package busybox-static)")


def module_order(tree: KernelTree, names: tuple[str, ...]) -> list[tuple[str, Path]]:
    """Resolve `names` and their dependencies to (name, .ko path) in load order."""
    order: list[tuple[str, Path]] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        base = ["modinfo", "-b", tree.sysroot, "-k", tree.spec.kver]
        deps = run([*base, "-F", "depends", name], kind="build").strip()
        for dep in filter(None, deps.split(",")):
            visit(dep)
        order.append((name, Path(run([*base, "-n", name], kind="build").strip())))

    for name in names:
        visit(name)
    return order


def stage1_modules(tree: KernelTree) -> tuple[str, ...]:
    """STAGE1_MODULES, after those of STAGE1_IF_MODULE this kernel builds as modules."""
    builtin = tree.modules_dir / "modules.builtin"
    names = {Path(line).stem for line in builtin.read_text().split()} if builtin.exists() else set()
    return tuple(m for m in STAGE1_IF_MODULE if m not in names) + STAGE1_MODULES


def build_initramfs(tree: KernelTree) -> Path:
    """Build (or reuse) `<cache>/initramfs-<hash>.cpio` and return its path."""
    busybox = _find_busybox()
    require_tool("cpio")
    init_text = INIT_SCRIPT.read_bytes()
    key = hashlib.sha256(init_text + busybox.read_bytes() + Path(__file__).read_bytes()).hexdigest()[:12]
    target = tree.root / f"initramfs-{key}.cpio"
    if target.exists():
        return target
    with locked(tree.root / "initramfs.lock"):
        if target.exists():
            return target
        stage = tree.root / "initramfs-stage"
        shutil.rmtree(stage, ignore_errors=True)
        (stage / "bin").mkdir(parents=True)
        (stage / "modules").mkdir()
        shutil.copy2(busybox, stage / "bin" / "busybox")
        (stage / "init").write_bytes(init_text)
        (stage / "init").chmod(0o755)
        names = []
        for name, ko in module_order(tree, stage1_modules(tree)):
            data = ko.read_bytes()
            if ko.suffix == ".xz":
                data = lzma.decompress(data)
            (stage / "modules" / f"{name}.ko").write_bytes(data)
            names.append(name)
        (stage / "modules" / "order").write_text("\n".join(names) + "\n")
        files = sorted(str(p.relative_to(stage)) for p in stage.rglob("*"))
        tmp = target.with_suffix(".tmp")
        with open(tmp, "wb") as out:
            proc = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=stage, stdout=out,
                                  input="\n".join(["."] + files).encode(), stderr=subprocess.PIPE)
        if proc.returncode != 0:
            raise LabError("build", f"cpio failed: {proc.stderr.decode(errors='replace')}")
        tmp.rename(target)
        shutil.rmtree(stage, ignore_errors=True)
    return target
