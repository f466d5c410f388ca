"""Lab configuration: which kernel, which devices, which QEMU resources."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def default_cache_root() -> Path:
    """Return `${XDG_CACHE_HOME:-~/.cache}/vfio-conform/lab`."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vfio-conform" / "lab"


@dataclass(frozen=True)
class KernelSpec:
    """A Debian kernel build: ABI name (e.g. 6.12.117+deb12) and flavour (amd64).

    Args:
        abi: Debian kernel ABI string, as in the package names.
        flavour: image flavour.
        source_series: the `linux-source-X.Y` package that carries mtty.c.
    """

    abi: str = "6.12.117+deb12"
    flavour: str = "amd64"
    source_series: str = "6.12"
    #: Set when resolved from the archives (qemu_lab/kernels.py): the exact packages (image ones first),
    #: their Debian version, linux-source's version and the private apt root they come through.
    packages: tuple[str, ...] = ()
    version: str = ""
    source_version: str = ""
    archive: str = ""

    @property
    def kver(self) -> str:
        """The `uname -r` of this kernel, e.g. 6.12.117+deb12-amd64."""
        return f"{self.abi}-{self.flavour}"

    @property
    def image_pkg(self) -> str:
        """Name of the package holding vmlinuz (the unsigned image unless resolved otherwise)."""
        return self.packages[0] if self.packages else f"linux-image-{self.kver}-unsigned"

    @property
    def release(self) -> str:
        """Upstream release (e.g. 6.12.117), from the Debian version when known."""
        return (self.version.split(":")[-1].split("-")[0] if self.version
                else self.abi.split("+")[0])

    def package_names(self) -> list[str]:
        """All Debian packages the lab downloads for this kernel."""
        if self.packages:
            return list(self.packages)
        return [self.image_pkg, f"linux-headers-{self.kver}", f"linux-headers-{self.abi}-common",
                f"linux-kbuild-{self.abi}", f"linux-source-{self.source_series}"]


@dataclass(frozen=True)
class PciDeviceSpec:
    """One emulated PCI device the vfio-pci lab puts in the guest and binds to vfio-pci.

    Args:
        kind: "edu", "ivshmem-plain", "e1000" (with QEMU's option ROM: a ROM region), "e1000e" or
            "virtio-net-pci" (each with an MSI-X table in a BAR).
        qemu_id: QEMU device id (also the manifest's `role`).
        mem_mib: shared-memory size for ivshmem-plain (BAR2), must be a power of two.
    """

    kind: str
    qemu_id: str
    mem_mib: int = 0


DEFAULT_PCI_DEVICES: tuple[PciDeviceSpec, ...] = (
    PciDeviceSpec("edu", "edu0"),
    PciDeviceSpec("ivshmem-plain", "ivshmem1m", 1),
    PciDeviceSpec("ivshmem-plain", "ivshmem2m", 2),
    PciDeviceSpec("e1000e", "e1000e0"),             # MSI-X table in BAR3
    PciDeviceSpec("virtio-net-pci", "virtionet0"),  # MSI-X table in BAR1
)


@dataclass(frozen=True)
class LabConfig:
    """Everything one lab boot needs.

    Args:
        mode: "mdev" (mtty variants) or "pci" (emulated PCI devices on vfio-pci).
        modules: mtty variant names to load (mdev mode), e.g. ("mtty",) or ("mtty_sc", "mtty_pc").
        instances: mdev instances to create per loaded module.
        mdev_type_suffix: which type of each parent to create ("2" = dual port, "1" = single).
        pci_devices: emulated devices for pci mode.
        kernel: which Debian kernel to boot.
        cache_root: where downloads and builds live (default: XDG cache).
        memory_mib, cpus, accel: QEMU resources; accel "tcg" (default) or "kvm:tcg".
        repo: host path that becomes the command's cwd in the guest (the repo).
        python: host interpreter to run in the guest (the real binary, not a pyenv shim).
        extra_env: extra environment for the guest command.
        extra_cmdline: extra kernel command-line words.
        boot_retries: retries when the guest dies before the command started (TCG flake).
        extra_shares: more host directories the guest sees read-only (e.g. a profile's directory).
        sandbox: run QEMU with its seccomp filter (`-sandbox on`, obsolete, elevateprivileges,
            spawn and resourcecontrol denied).
        qemu_user: when the harness is root, the user QEMU switches to once the VM is set up;
            None keeps root.
    """

    mode: str = "mdev"
    modules: tuple[str, ...] = ("mtty",)
    instances: int = 2
    mdev_type_suffix: str = "2"
    pci_devices: tuple[PciDeviceSpec, ...] = DEFAULT_PCI_DEVICES
    kernel: KernelSpec = field(default_factory=KernelSpec)
    cache_root: Path = field(default_factory=default_cache_root)
    memory_mib: int = 1024
    cpus: int = 2
    accel: str = "tcg"
    repo: Path | None = None
    python: str | None = None
    extra_env: tuple[tuple[str, str], ...] = ()
    extra_cmdline: tuple[str, ...] = ()
    boot_retries: int = 1
    extra_shares: tuple[Path, ...] = ()
    sandbox: bool = True
    qemu_user: str | None = "nobody"

    @property
    def kernel_cache(self) -> Path:
        """Cache directory of this config's kernel (`<cache_root>/<kver>`)."""
        return self.cache_root / self.kernel.kver
