"""High-level lab API: prepare the cache once, boot a guest, run argv, return a LabResult."""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..base.constants import user_cache_dir
from .channels import JOURNAL, PROGRESS, spec_entries
from .config import LabConfig
from .crash import read_progress
from .errors import LabError
from .initramfs import build_initramfs
from .modbuild import VARIANTS, build_modules
from .packages import KernelTree, prepare_kernel
from .qemu import build_argv, give_to_qemu_user, pci_bdf, run_qemu
from .shares import GuestView, plan_view, python_prefixes, stage_etc

GUEST_RESULTS = "/vfio-lab/results"
#: The copy of the host's /etc files the guest gets (qemu_lab/shares.py), in the run dir.
GUEST_ETC = "guest-etc"
GUEST_SCRIPT = Path(__file__).with_name("guest.py")
REPO_DEFAULT = Path(__file__).resolve().parents[2]
UUID_NAMESPACE = uuid.UUID("6b0f3f4e-9a51-4d1e-9a4e-5f8c3c1f0a11")
CRASH_PATTERNS = re.compile(
    r"(Kernel panic - not syncing.*|Oops:.*|BUG: .*|general protection fault.*|"
    r"watchdog: BUG: soft lockup.*|Unable to handle kernel.*)")
WARN_PATTERN = re.compile(r"WARNING: CPU: \d+ PID: \d+ at .*")
FATAL_PATTERN = re.compile(r"VFIO-LAB: FATAL (.*)")
#: The panic when the guest's init exits: after the command, its wait for the power-off ran out.
INIT_EXITED = "Kernel panic - not syncing: Attempted to kill init!"
#: How long guest_init.sh waits for the power-off it asked for (its `sleep`).
POWEROFF_WAIT_S = 30
#: A device removal waiting for its users (the kernel says so every few seconds while it waits).
BLOCKED_PATTERN = re.compile(r".*(?:blocked until released by user|"
                             r"Device is currently in use, task .* blocked until device is released).*")
KEEP_RUNS = 30


@dataclass(frozen=True)
class Prepared:
    """Everything on the host a boot needs, all under the cache directory."""

    tree: KernelTree
    modules: dict[str, Path]
    initramfs: Path


@dataclass
class LabResult:
    """Outcome of one command run in the guest.

    exit_code is the command's own exit status; stdout/stderr are its captured output.
    timings maps console markers (e.g. "command start") to seconds since QEMU started.
    """

    exit_code: int
    stdout: str
    stderr: str
    run_dir: Path
    console_log: Path
    dmesg_path: Path
    manifest_path: Path
    manifest: dict[str, Any]
    timings: dict[str, float]
    kernel_warnings: list[str] = field(default_factory=list)
    attempts: int = 1

    @property
    def dmesg(self) -> str:
        """Guest kernel log saved after the command finished."""
        return self.dmesg_path.read_text(errors="replace")

    @property
    def device_ids(self) -> list[str]:
        """UUIDs (mdev) or BDFs (pci) of the devices the guest set up."""
        return [d["id"] for d in self.manifest["devices"]]


class LabSession:
    """One lab configuration: `prepare()` builds the cache, `run(argv)` boots and runs."""

    def __init__(self, config: LabConfig | None = None) -> None:
        self.config = config or LabConfig()
        self._prepared: Prepared | None = None
        for name in self.config.modules:
            if self.config.mode == "mdev" and name not in VARIANTS:
                raise LabError("guest-setup", f"unknown mtty variant {name!r}; known: {sorted(VARIANTS)}")

    def prepare(self) -> Prepared:
        """Download, unpack and build everything (cached under config.cache_root)."""
        if self._prepared is None:
            tree = prepare_kernel(self.config.kernel, self.config.kernel_cache)
            modules = build_modules(tree)
            self._prepared = Prepared(tree, modules, build_initramfs(tree))
        return self._prepared

    def planned_devices(self) -> list[str]:
        """Device ids the guest will create: mdev UUIDs (stable per module/index) or BDFs."""
        if self.config.mode == "pci":
            return [pci_bdf(i) for i in range(len(self.config.pci_devices))]
        return [str(u) for m in self.config.modules for u in self._uuids(m)]

    def harness_argv(self, profile: str, reports: str = f"{GUEST_RESULTS}/reports",
                     extra: tuple[str, ...] = ()) -> list[str]:
        """argv of `python3 -m vfio_conform run` on this session's devices (source, destination)."""
        devices = [a for d in self.planned_devices() for a in ("--device", d)]
        return ["python3", "-m", "vfio_conform", "run", "--profile", profile, *devices,
                "--reports", reports, *extra]

    def module_devices(self, module: str) -> list[str]:
        """The mdev UUIDs the guest creates for one loaded module (source first)."""
        return [str(u) for u in self._uuids(module)]

    def _uuids(self, module: str) -> list[uuid.UUID]:
        return [uuid.uuid5(UUID_NAMESPACE, f"{module}/{i}") for i in range(self.config.instances)]

    def _spec(self, prepared: Prepared, argv: list[str], env: dict[str, str]) -> dict[str, Any]:
        """The JSON spec guest.py reads from the results share."""
        cfg = self.config
        spec: dict[str, Any] = {"mode": cfg.mode, "argv": argv, "env": env,
                                "cwd": str(cfg.repo or REPO_DEFAULT),
                                "channels": spec_entries(GUEST_RESULTS)}
        if cfg.mode == "mdev":
            spec["base_modules"] = ["vfio", "vfio_iommu_type1", "mdev"]
            spec["modules"] = [{"name": m, "ko": str(prepared.modules[m]),
                                "type": VARIANTS[m].mdev_type(cfg.mdev_type_suffix),
                                "flags": VARIANTS[m].flags, "bug": VARIANTS[m].bug,
                                "uuids": [str(u) for u in self._uuids(m)]} for m in cfg.modules]
        elif cfg.mode == "pci":
            spec["base_modules"] = ["vfio", "vfio_iommu_type1", "vfio_pci"]
            spec["pci"] = [{"bdf": pci_bdf(i), "role": d.qemu_id, "kind": d.kind}
                           for i, d in enumerate(cfg.pci_devices)]
        else:
            raise LabError("guest-setup", f"unknown lab mode {cfg.mode!r} (mdev, pci)")
        return spec

    def _env(self, python: str) -> dict[str, str]:
        """Environment of the guest command: real interpreter first on PATH, repo on PYTHONPATH."""
        repo = str(self.config.repo or REPO_DEFAULT)
        env = {"PATH": f"{os.path.dirname(python)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                       "/usr/bin:/sbin:/bin",
               "HOME": "/root", "LANG": "C.UTF-8", "TERM": "dumb", "PYTHONPATH": repo,
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
               "VFIO_LAB": "1", "VFIO_LAB_RESULTS": GUEST_RESULTS,
               "VFIO_LAB_MANIFEST": f"{GUEST_RESULTS}/manifest.json",
               "VFIO_LAB_PROGRESS": PROGRESS.guest_path(),     # a line per test started
               "VFIO_LAB_JOURNAL": JOURNAL.guest_path(),       # a line per result stored
               "VFIO_LAB_DEVICES": " ".join(self.planned_devices()),
               # this host's caches, which qemu_lab/warm.py fills before the boot (read-only in the guest)
               "XDG_CACHE_HOME": str(user_cache_dir().parent)}
        env.update(dict(self.config.extra_env))
        return env

    def _substitute(self, argv: list[str]) -> list[str]:
        """Replace @RESULTS@ and @DEV0@, @DEV1@, ... in argv items."""
        devs = self.planned_devices()
        out = []
        for arg in argv:
            arg = arg.replace("@RESULTS@", GUEST_RESULTS)
            for i in reversed(range(len(devs))):
                arg = arg.replace(f"@DEV{i}@", devs[i])
            out.append(arg)
        return out

    def run(self, argv: list[str], timeout: float = 300.0, results_dir: Path | None = None,
            env: dict[str, str] | None = None, command_timeout: float | None = None,
            stall_timeout: float | None = None) -> LabResult:
        """Boot a guest, set up the devices, run argv (cwd = repo) and return its result.

        `timeout` caps the whole boot; `command_timeout` (optional) caps the command alone,
        counted from the guest's "command start" marker.

        Raises LabError for infrastructure failures (retrying once a guest that died
        before the command started), a timeout, or a kernel crash while it ran.
        """
        prepared = self.prepare()
        run_dir = Path(results_dir) if results_dir else self._new_run_dir()
        run_dir.mkdir(parents=True, exist_ok=True)
        python = self.config.python or sys.executable  # not realpath: keep a venv's python
        cmd_env = self._env(python)
        cmd_env.update(env or {})
        spec = self._spec(prepared, self._substitute(list(argv)), cmd_env)
        view = self.guest_view(python, cmd_env)
        attempts = 1 + max(0, self.config.boot_retries)
        for attempt in range(1, attempts + 1):
            try:
                return self._attempt(prepared, spec, python, run_dir,
                                     (timeout, command_timeout, stall_timeout), attempt, view)
            except _BootFlake as flake:
                if attempt == attempts:
                    raise LabError("boot", f"guest died before the command started "
                                   f"({attempt} attempts): {flake}", console_log=str(flake.log)) from None
                _stash_attempt(run_dir, attempt)
        raise AssertionError("unreachable")

    def guest_view(self, python: str, env: dict[str, str]) -> GuestView:
        """What of the host the guest sees (qemu_lab/shares.py): the checkout, the interpreter's
        installation, the caches, the PYTHONPATH entries and the config's extra shares."""
        paths: list[str | Path] = [self.config.repo or REPO_DEFAULT, *python_prefixes(python),
                                   user_cache_dir(), self.config.cache_root, *self.config.extra_shares]
        paths += [p for p in env.get("PYTHONPATH", "").split(":") if p]
        return plan_view(paths)

    def _new_run_dir(self) -> Path:
        """A fresh dir under <cache_root>/runs; only the newest KEEP_RUNS are kept."""
        runs = self.config.cache_root / "runs"
        old = sorted(runs.iterdir()) if runs.is_dir() else []
        for stale in old[:max(0, len(old) - KEEP_RUNS + 1)]:
            shutil.rmtree(stale, ignore_errors=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return runs / f"{stamp}-{os.getpid()}-{uuid.uuid4().hex[:6]}"

    def _attempt(self, prepared: Prepared, spec: dict[str, Any], python: str, run_dir: Path,
                 limits: tuple[float, float | None, float | None], attempt: int,
                 view: GuestView) -> LabResult:
        """One boot; raises _BootFlake when a retry makes sense, LabError otherwise."""
        for name in ("manifest.json", "guest.json", "stdout.txt", "stderr.txt", "dmesg.txt", "progress"):
            (run_dir / name).unlink(missing_ok=True)
        (run_dir / "spec.json").write_text(json.dumps(spec, indent=2) + "\n")
        (run_dir / "boot.env").write_text(
            f"LAB_PYTHON='{python}'\nLAB_GUEST='{GUEST_SCRIPT}'\n"
            f"LAB_KVER='{prepared.tree.spec.kver}'\nLAB_MODULES='{prepared.tree.modules_dir}'\n"
            + view.boot_env())
        stage_etc(run_dir / GUEST_ETC)
        console = run_dir / "console.log"
        console.unlink(missing_ok=True)
        argv = build_argv(self.config, prepared.tree.vmlinuz, prepared.initramfs, run_dir, console,
                          view.shares)
        give_to_qemu_user(self.config, run_dir)
        (run_dir / "qemu.argv").write_text("\n".join(argv) + "\n")
        timeout, command_timeout, stall_timeout = limits
        outcome = run_qemu(argv, console, run_dir / "qemu.stderr", timeout, command_timeout,
                           progress=run_dir / "progress", stall_timeout=stall_timeout)
        text = _read_text(console)
        crash = CRASH_PATTERNS.findall(text)
        started = "command start" in outcome.markers
        last_test = _last_test(run_dir)
        if outcome.timed_out:
            where = list(outcome.markers)[-1] if outcome.markers else "no marker"
            limit = (f"command did not finish within {command_timeout:.0f}s" if started and
                     command_timeout is not None and outcome.elapsed < timeout
                     else f"no test progress for {stall_timeout:.0f}s" if started and
                     stall_timeout is not None and outcome.elapsed < timeout
                     else f"guest did not finish within {timeout:.0f}s")
            raise LabError("timeout", f"{limit} (last marker: "
                           f"{where}; last test: {last_test or 'n/a'}); QEMU killed. "
                           f"Console: {console}", console_log=str(console), last_test=last_test)
        guest = _read_json(run_dir / "guest.json")
        if crash and "stage2 exit" in outcome.markers and all(c.startswith(INIT_EXITED) for c in crash):
            # the guest's init waits POWEROFF_WAIT_S for the power-off it asked for, then exits
            code = guest.get("exit_code") if guest else None
            blocked = BLOCKED_PATTERN.findall(text)
            why = f"a device's removal blocked ({blocked[-1].strip()})" if blocked else "a device's shutdown blocked"
            stderr = _tail(_read_text(run_dir / "stderr.txt"), 6) or "(empty)"
            raise LabError("poweroff", f"the command ended (exit {code}) but the guest did not power off "
                           f"within {POWEROFF_WAIT_S}s: {why}. Command stderr: {stderr}. Console: {console}",
                           console_log=str(console), last_test=last_test)
        if crash and started:
            raise LabError("kernel-crash", f"kernel crashed while the command ran: {crash[0]} "
                           f"(last test started: {last_test or 'n/a'}). Console: {console}",
                           console_log=str(console), last_test=last_test)
        fatal = FATAL_PATTERN.findall(text)
        if fatal and not crash and not (guest and guest.get("setup_error")):
            raise LabError("guest-setup", f"{fatal[0]}. Console: {console}", console_log=str(console))
        if guest and guest.get("setup_error"):
            raise LabError("guest-setup", f"{guest['setup_error']}. Console: {console}",
                           console_log=str(console))
        if not started and not crash and "stage2 exit" in outcome.markers:
            raise LabError("guest-setup", f"guest.py exited before starting the command (is "
                           f"{python} runnable from the host root?); console tail:\n"
                           f"{_tail(text)}", console_log=str(console))
        if not started:
            if outcome.returncode not in (0, None) and "stage1 start" not in outcome.markers:
                qerr = (run_dir / "qemu.stderr").read_text(errors="replace").strip()
                raise LabError("boot", f"QEMU exited with {outcome.returncode} before the guest "
                               f"started: {qerr[-2000:]}", console_log=str(console))
            raise _BootFlake(f"{crash[0] if crash else 'no command-start marker'}; console tail:\n"
                             f"{_tail(text)}", console)
        if guest is None or guest.get("exit_code") is None:
            raise LabError("boot", f"guest stopped while the command ran without a result "
                           f"(last test: {last_test or 'n/a'}). Console: {console}",
                           console_log=str(console), last_test=last_test)
        dmesg = run_dir / "dmesg.txt"
        dtext = _read_text(dmesg)
        timings = dict(outcome.markers, total=round(outcome.elapsed, 2))
        return LabResult(
            exit_code=int(guest["exit_code"]),
            stdout=(run_dir / "stdout.txt").read_text(errors="replace"),
            stderr=(run_dir / "stderr.txt").read_text(errors="replace"),
            run_dir=run_dir, console_log=console, dmesg_path=dmesg,
            manifest_path=run_dir / "manifest.json",
            manifest=_read_json(run_dir / "manifest.json") or {},
            timings=timings, kernel_warnings=WARN_PATTERN.findall(dtext), attempts=attempt)


class _BootFlake(Exception):
    """The guest died before the command started; worth one retry."""

    def __init__(self, reason: str, log: Path) -> None:
        super().__init__(reason)
        self.log = log


def _tail(text: str, lines: int = 15) -> str:
    """Last lines of a console log, for error messages."""
    return "\n".join(text.splitlines()[-lines:])


def _last_test(run_dir: Path) -> str | None:
    """The last test started, from the progress file the harness may write."""
    return read_progress(run_dir / "progress").last


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _read_text(path: Path) -> str:
    """The file's text ('' when it is missing or unreadable)."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _stash_attempt(run_dir: Path, attempt: int) -> None:
    """Keep the failed attempt's console log next to the retry's files."""
    src = run_dir / "console.log"
    if src.exists():
        shutil.move(str(src), str(run_dir / f"console.attempt{attempt}.log"))
