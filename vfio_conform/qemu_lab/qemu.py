"""Build the QEMU command line and run it under a host-side timeout, watching the console."""
from __future__ import annotations

import ctypes
import functools
import os
import pwd
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .channels import qemu_args as channel_args
from .config import LabConfig
from .errors import LabError
from .proc import require_tool
from .shares import Share

QEMU = "qemu-system-x86_64"
RESULTS_TAG = "results"
MARKER = "VFIO-LAB:"
BASE_CMDLINE = ("console=ttyS0", "rdinit=/init", "panic=-1", "oops=panic", "softlockup_panic=1",
                "loglevel=5", "mitigations=off")
PCI_FIRST_SLOT = 0x10
#: Devices the pci lab adds with no options: e1000 (a NIC with an option ROM, QEMU's default iPXE
#: romfile), e1000e and virtio-net-pci (NICs with an MSI-X table inside a BAR, which vfio-pci's
#: read() does not reach: suitelib/virtualized.py). Without a netdev they have no link.
PLAIN_KINDS = ("e1000", "e1000e", "virtio-net-pci")


def pci_bdf(index: int) -> str:
    """Guest BDF of the index-th lab PCI device (fixed slots from 00:10.0 on pcie.0)."""
    return f"0000:00:{PCI_FIRST_SLOT + index:02x}.0"


def _check_path(path: Path) -> str:
    text = str(path)
    if "," in text:
        raise LabError("boot", f"QEMU 9p share path may not contain a comma: {text}")
    return text


def _device_args(config: LabConfig) -> list[str]:
    """The vIOMMU and emulated PCI devices of pci mode (intel-iommu first)."""
    if config.mode != "pci":
        return []
    args = ["-device", "intel-iommu,intremap=on"]
    for i, dev in enumerate(config.pci_devices):
        where = f"bus=pcie.0,addr=0x{PCI_FIRST_SLOT + i:x}"
        if dev.kind == "edu":
            args += ["-device", f"edu,id={dev.qemu_id},{where}"]
        elif dev.kind == "ivshmem-plain":
            if dev.mem_mib <= 0 or dev.mem_mib & (dev.mem_mib - 1):
                raise LabError("boot", f"ivshmem {dev.qemu_id}: mem_mib must be a power of two")
            args += ["-object", f"memory-backend-ram,id=mem-{dev.qemu_id},size={dev.mem_mib}M,share=on",
                     "-device", f"ivshmem-plain,id={dev.qemu_id},memdev=mem-{dev.qemu_id},{where}"]
        elif dev.kind in PLAIN_KINDS:   # QEMU's own NICs: no backend needed
            args += ["-device", f"{dev.kind},id={dev.qemu_id},{where}"]
        else:
            raise LabError("boot", f"unknown lab PCI device kind {dev.kind!r} (edu, ivshmem-plain, "
                                   f"{', '.join(PLAIN_KINDS)})")
    return args


def build_argv(config: LabConfig, vmlinuz: Path, initramfs: Path, run_dir: Path,
               console_log: Path, shares: tuple[Share, ...] = ()) -> list[str]:
    """Return the full QEMU argv for one lab boot: the read-only `shares` (qemu_lab/shares.py) and the
    results share, and QEMU's own confinement (seccomp sandbox, user and chroot)."""
    cmdline = list(BASE_CMDLINE)
    if config.mode == "pci":
        # no_timer_check: under a loaded TCG host the IO-APIC timer check behind interrupt
        # remapping failed early in boot ("timer doesn't work through Interrupt-remapped IO-APIC",
        # a panic) in 2 of 5 pci boots; the emulated timer works, the check only times it
        cmdline += ["intel_iommu=on", "no_timer_check"]
    cmdline += list(config.extra_cmdline)
    return [
        require_tool(QEMU), "-machine", f"q35,accel={config.accel}", "-cpu", "max",
        "-m", str(config.memory_mib), "-smp", str(config.cpus),
        "-nodefaults", "-no-user-config", "-no-reboot", "-display", "none",
        "-kernel", str(vmlinuz), "-initrd", str(initramfs), "-append", " ".join(cmdline),
        "-serial", f"file:{_check_path(console_log)}",
        *[a for share in shares for a in (
            "-virtfs", f"local,path={_check_path(Path(share.path))},mount_tag={share.tag},"
                       "security_model=none,readonly=on,multidevs=remap")],
        "-virtfs", f"local,path={_check_path(run_dir)},mount_tag={RESULTS_TAG},security_model=none,"
                   "multidevs=remap",
        *confinement_args(config),
        *_device_args(config),              # the vIOMMU first, before any other PCI device
        *channel_args(run_dir),
    ]


#: The seccomp filter: every optional group of system calls QEMU offers denied. When QEMU drops
#: root itself (-runas / -run-with user=) it calls setuid() after installing the filter, so the
#: set*uid group stays allowed then: once QEMU runs as that user it cannot regain root anyway.
SANDBOX = "on,obsolete=deny,elevateprivileges={privileges},spawn=deny,resourcecontrol=deny"


@functools.lru_cache(maxsize=None)
def qemu_options(qemu: str) -> frozenset[str]:
    """The options this QEMU's -help lists (e.g. -sandbox, -run-with, -runas, -chroot)."""
    try:
        text = subprocess.run([qemu, "-help"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(line.split()[0] for line in text.splitlines() if line.startswith("-"))


def confinement_args(config: LabConfig) -> list[str]:
    """-sandbox (seccomp), and, when we are root, the user QEMU switches to once the VM is set up
    (QEMU 9+: -run-with user=; older: -runas).

    What it cannot drop: QEMU starts as root (the shares, the chardev files and the kernel are
    opened then); a share's files must be readable by `qemu_user` (the lab's are world-readable);
    and no chroot: QEMU's 9p server reaches files through /proc/self/fd (its xattr calls, which
    overlayfs copy-up makes), which an empty chroot lacks (mkdir in the guest's /usr overlay failed
    with ENOENT under -chroot)."""
    opts = qemu_options(require_tool(QEMU))
    drop: list[str] = []
    if config.qemu_user and os.geteuid() == 0:
        if "-run-with" in opts:
            drop = ["-run-with", f"user={config.qemu_user}"]
        elif "-runas" in opts:
            drop = ["-runas", config.qemu_user]
    args = []
    if config.sandbox:
        if "-sandbox" not in opts:
            raise LabError("boot", f"{QEMU} has no -sandbox (built without seccomp); set "
                                   "LabConfig(sandbox=False) to run it unconfined")
        args += ["-sandbox", SANDBOX.format(privileges="allow" if drop else "deny")]
    return args + drop


def give_to_qemu_user(config: LabConfig, run_dir: Path) -> None:
    """The results share is written by QEMU after it dropped to `qemu_user`: hand it the run dir."""
    if not config.qemu_user or os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam(config.qemu_user)
    except KeyError:
        raise LabError("boot", f"QEMU user {config.qemu_user!r} does not exist on this host") from None
    for base, dirs, files in os.walk(run_dir):
        for name in [base, *(os.path.join(base, n) for n in dirs + files)]:
            os.lchown(name, user.pw_uid, user.pw_gid)


@dataclass
class QemuOutcome:
    """What happened to one QEMU process."""

    returncode: int | None
    timed_out: bool
    elapsed: float
    markers: dict[str, float] = field(default_factory=dict)


def _die_with_parent() -> None:
    """Child pre-exec hook: SIGKILL QEMU if the Python that started it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _scan_markers(console_log: Path, seen: dict[str, float], t0: float) -> None:
    """Record the first host time (relative to t0) each console marker appeared."""
    try:
        text = console_log.read_text(errors="replace")
    except FileNotFoundError:
        return
    for line in text.splitlines():
        idx = line.find(MARKER)
        if idx >= 0:
            key = line[idx + len(MARKER):].strip()
            key = " ".join(key.split()[:2])
            seen.setdefault(key, round(time.monotonic() - t0, 2))


def run_qemu(argv: list[str], console_log: Path, stderr_log: Path, timeout: float,
             command_timeout: float | None = None, *, progress: Path | None = None,
             stall_timeout: float | None = None) -> QemuOutcome:
    """Start QEMU, wait up to `timeout` seconds in all (and at most `command_timeout` after
    the "command start" marker, and at most `stall_timeout` without `progress` changing once the
    command started), then SIGKILL it; return the outcome."""
    t0 = time.monotonic()
    markers: dict[str, float] = {}
    with open(stderr_log, "wb") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                preexec_fn=_die_with_parent)
        try:
            while proc.poll() is None:
                now = time.monotonic() - t0
                started = markers.get("command start")
                if now > timeout or (command_timeout is not None and started is not None
                                     and now - started > command_timeout) or (
                        started is not None and _stalled(progress, stall_timeout, t0 + started)):
                    proc.kill()
                    proc.wait()
                    _scan_markers(console_log, markers, t0)
                    return QemuOutcome(None, True, time.monotonic() - t0, markers)
                _scan_markers(console_log, markers, t0)
                time.sleep(0.2)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    _scan_markers(console_log, markers, t0)
    return QemuOutcome(proc.returncode, False, time.monotonic() - t0, markers)


def _stalled(progress: Path | None, stall_timeout: float | None, since: float) -> bool:
    """True if `progress` has not changed for `stall_timeout` s (a guest hung below Python)."""
    if progress is None or stall_timeout is None:
        return False
    try:
        age = time.time() - progress.stat().st_mtime
    except OSError:                       # no test started yet: count from the command start
        age = time.monotonic() - since
    return age > stall_timeout


def kvm_usable() -> bool:
    """True if /dev/kvm can be opened (it may still fail to run a guest; see qemu-lab notes)."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    return True
