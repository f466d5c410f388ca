"""Run QEMU (from the trixie chroot) as the real migration client of lab mdev devices, in the guest.

Standalone (stdlib only, started by path like guest.py). For each device pair (source mdev,
destination mdev) of a profile it does what a user migrating a VM does, with a VM that needs no OS:

1. source VM with the mdev assigned (`-device vfio-pci,sysfsdev=...,enable-migration=on`); SeaBIOS
   assigns the BARs; QMP `query-pci` gives the address of the device's I/O BAR0;
2. the 16550 scratch register (BAR0 + 7) is set through HMP `o` and read back through HMP `i`;
3. QMP `migrate` to a file, then `query-migrate` until completed or failed (QEMU's error-desc kept);
4. destination VM with the second mdev, `-incoming defer` + QMP `migrate-incoming` of that file;
5. HMP `i` reads the scratch register on the destination: it must hold the source's value.

First with QEMU's default options; if that fails, again with `x-device-dirty-page-tracking=off`
(QEMU then tracks dirty pages through the IOMMU container instead of the device's DMA logging), so
the host can tell where the default run failed. Writes one JSON document (see `main`).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

QEMU = "/usr/bin/qemu-system-x86_64"
#: mdev attempts always ask for migration (QEMU's default, auto, silently blocks it instead of failing).
MIGRATION_ON = ("enable-migration=on",)
#: The option sets tried on top of MIGRATION_ON, in order; the second only when the first fails.
ATTEMPTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("default", ()),
    ("no-device-dirty-tracking", ("x-device-dirty-page-tracking=off",)),
)
#: The attempts run_pair makes (main's --only narrows it to one).
ATTEMPTS_RUN = list(ATTEMPTS)
SCRATCH = 7                  # 16550 scratch register offset in mtty's I/O BAR0
VALUES = {"default": 0x5A, "no-device-dirty-tracking": 0xA5}
STEP_TIMEOUT_S = 150.0       # one nested-VM step (start, BIOS, migrate) under TCG inside TCG
GUEST_MEM_MIB = 16           # SeaBIOS only: keep the migration stream small
#: The source's migration bandwidth (QMP migrate-set-parameters max-bandwidth, bytes/s), as over a
#: network link: the 16 MiB guest then takes about 2 s, so QEMU has measured a bandwidth (its first
#: sample comes after 100 ms) and asks the devices' exact pending sizes (MIG_DATA_SIZE) before it
#: switches over. Unlimited into a file, the RAM can be sent before the first sample and QEMU
#: switches over on the cached estimate alone (measured: QEMU 10.0 then never queries MIG_DATA_SIZE).
MAX_BANDWIDTH = 32 << 10
#: How long a migration may stay active: far above the ~2 s it takes, so an active one at the end
#: did not converge.
MIGRATE_TIMEOUT_S = 60.0
BIND_MOUNTS = ("dev", "sys", "proc")


class StepError(Exception):
    """A step of the migration failed; `stage` names it, the message is QEMU's own text."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage


def io_bar0(query_pci: list[dict[str, Any]], qdev_id: str) -> int | None:
    """The I/O address SeaBIOS gave BAR0 of device `qdev_id` in a QMP `query-pci` answer.

    None while unassigned (QEMU reports an unmapped or I/O-disabled BAR as all-ones).
    """
    for bus in query_pci:
        for dev in bus.get("devices", []):
            if dev.get("qdev_id") != qdev_id:
                continue
            for region in dev.get("regions", []):
                if region.get("bar") == 0 and region.get("type") == "io":
                    addr = int(region.get("address", -1))
                    return addr if 0 < addr < 0xFFFF else None
    return None


def parse_port_read(text: str) -> int:
    """The value in HMP `i` output (e.g. `portb[0xc007] = 0x5a`); ValueError if there is none."""
    match = re.search(r"\]\s*=\s*(0x[0-9a-fA-F]+)", text) or re.search(r"=\s*(0x[0-9a-fA-F]+)", text)
    if not match:
        raise ValueError(f"no value in HMP output {text!r}")
    return int(match.group(1), 16)


#: The start of the message of a migration still active at the deadline (consumer_verdict.py reads it).
NOT_CONVERGED = "migration did not converge"


def not_converged(info: dict[str, Any], seconds: float) -> str:
    """The message for a migration QMP still reports active after `seconds`: pre-copy never reached
    switch-over. From its last query-migrate: the dirty-sync rounds, RAM still to send and the VFIO
    bytes sent (QEMU exposes no per-device pending size through QMP)."""
    ram, vfio = info.get("ram", {}), info.get("vfio", {})
    parts = [f"{NOT_CONVERGED} within {seconds:.0f}s: status active after "
             f"{ram.get('dirty-sync-count', '?')} dirty-sync rounds",
             f"RAM remaining {ram.get('remaining', '?')} bytes"]
    if "transferred" in vfio:
        parts.append(f"VFIO device data sent {vfio['transferred']} bytes")
    if "expected-downtime" in info:
        parts.append(f"expected downtime {info['expected-downtime']} ms")
    return ", ".join(parts) + " (migration cancelled)"


def qemu_lines(stderr: str) -> list[str]:
    """QEMU's own messages from its stderr (prefixed by the program name), in order, without repeats."""
    lines: list[str] = []
    for line in stderr.splitlines():
        line = line.strip()
        if line.startswith(("qemu-system-x86_64:", "qemu:")):
            text = line.split(":", 1)[1].strip()
            if text not in lines:
                lines.append(text)
    return lines


def qemu_errors(stderr: str) -> list[str]:
    """QEMU's error messages (its warnings left out)."""
    return [line for line in qemu_lines(stderr) if "warning:" not in line]


def qemu_warnings(stderr: str) -> list[str]:
    """QEMU's warnings, from `warning:` on (the option echo before it dropped)."""
    return [line[line.index("warning:"):] for line in qemu_lines(stderr) if "warning:" in line]


class Qmp:
    """A minimal blocking QMP client on a unix socket (events are skipped)."""

    def __init__(self, path: Path, timeout: float, alive: Callable[[], bool] = lambda: True) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(timeout)
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if not alive():
                    raise StepError("start", "QEMU exited before its QMP socket opened") from None
                if time.monotonic() > deadline:
                    raise StepError("start", f"QMP socket {path} did not open within {timeout:.0f}s") from None
                time.sleep(0.2)
        self.file = self.sock.makefile("rwb")
        self._read()                                  # greeting
        self.cmd("qmp_capabilities")

    def _read(self) -> dict[str, Any]:
        while True:
            line = self.file.readline()
            if not line:
                raise StepError("qmp", "QEMU closed the QMP connection")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def cmd(self, name: str, **args: Any) -> Any:
        """Execute one command; StepError(stage=name) with QEMU's error text if it fails."""
        msg: dict[str, Any] = {"execute": name}
        if args:
            msg["arguments"] = args
        self.file.write(json.dumps(msg).encode() + b"\n")
        self.file.flush()
        reply = self._read()
        if "error" in reply:
            raise StepError(name, reply["error"].get("desc", str(reply["error"])))
        return reply.get("return")

    def hmp(self, line: str) -> str:
        """Run an HMP command through QMP; return its output."""
        return str(self.cmd("human-monitor-command", **{"command-line": line}))

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def host_option(device: str) -> str:
    """vfio-pci's option naming a device: `host=` for a PCI address, else the mdev's `sysfsdev=`."""
    if re.fullmatch(r"[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]", device):
        return f"host={device}"
    return f"sysfsdev=/sys/bus/mdev/devices/{device}"


class Vm:
    """One nested QEMU process in the chroot with a QMP socket and a captured stderr."""

    def __init__(self, root: Path, name: str, host: str, options: tuple[str, ...],
                 extra: tuple[str, ...] = ()) -> None:
        self.root, self.name = root, name
        self.sock = f"/tmp/{name}.qmp"
        self.stderr_path = root / "tmp" / f"{name}.stderr"
        device = ",".join(("vfio-pci", host_option(host), "id=vc0", *options))
        self.argv = ["chroot", str(root), QEMU, "-machine", "pc,accel=tcg", "-m", str(GUEST_MEM_MIB),
                     "-nodefaults", "-no-user-config", "-display", "none", "-serial", "none",
                     "-qmp", f"unix:{self.sock},server=on,wait=off", "-device", device, *extra]
        (root / "tmp" / f"{name}.qmp").unlink(missing_ok=True)
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        self.qmp: Qmp | None = None
        try:
            self.qmp = Qmp(root / "tmp" / f"{name}.qmp", STEP_TIMEOUT_S, lambda: self.proc.poll() is None)
        except (StepError, OSError, ValueError) as exc:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            raise StepError(f"{name}-start", self._why(str(exc))) from None

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def _why(self, fallback: str) -> str:
        """QEMU's own error lines (it may have exited), else `fallback`."""
        if self.proc.poll() is not None:
            time.sleep(0.1)
        errors = qemu_errors(self.stderr())
        return "; ".join(errors) if errors else fallback

    def cmd(self, stage: str, name: str, **args: Any) -> Any:
        """A QMP command; on failure QEMU's answer first, then its stderr errors not already in it."""
        try:
            assert self.qmp is not None
            return self.qmp.cmd(name, **args)
        except StepError as exc:
            if exc.stage != name:                   # the connection failed, not the command
                raise StepError(stage, self._why(str(exc))) from None
            extra = [e for e in qemu_errors(self.stderr()) if e not in str(exc)]
            raise StepError(stage, "; ".join([str(exc), *extra])) from None
        except (OSError, ValueError) as exc:
            raise StepError(stage, self._why(str(exc))) from None

    def hmp(self, stage: str, line: str) -> str:
        return str(self.cmd(stage, "human-monitor-command", **{"command-line": line}))

    def wait_migration(self, stage: str, timeout: float = STEP_TIMEOUT_S) -> dict[str, Any]:
        """Poll query-migrate until completed; StepError with error-desc (and stderr) otherwise.

        A migration still active at the deadline did not converge: the error says so, with the
        dirty-sync rounds QEMU ran and what it still counted pending (its last query-migrate)."""
        deadline = time.monotonic() + timeout
        info: dict[str, Any] = {}
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StepError(stage, self._why(f"QEMU exited with {self.proc.returncode}"))
            info = self.cmd(stage, "query-migrate")
            status = info.get("status")
            if status == "completed":
                return info
            if status in ("failed", "cancelled"):
                desc = info.get("error-desc", f"migration {status}")
                errors = [e for e in qemu_errors(self.stderr()) if e not in desc]
                raise StepError(stage, "; ".join([desc, *errors]))
            time.sleep(0.3)
        if info.get("status") == "active":
            try:
                self.cmd(stage, "migrate_cancel")
            except StepError:
                pass
            raise StepError(stage, not_converged(info, timeout))
        raise StepError(stage, f"migration did not finish within {timeout:.0f}s")

    def stop(self) -> None:
        if self.qmp is not None:
            try:
                self.qmp.cmd("quit")
            except (StepError, OSError, ValueError):
                pass
            self.qmp.close()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _wait_bar(vm: Vm) -> int:
    """Poll query-pci until SeaBIOS has assigned and enabled BAR0."""
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while time.monotonic() < deadline:
        port = io_bar0(vm.cmd("bios", "query-pci"), "vc0")
        if port is not None:
            return port
        if vm.proc.poll() is not None:
            raise StepError("bios", vm._why(f"QEMU exited with {vm.proc.returncode}"))
        time.sleep(0.3)
    raise StepError("bios", f"SeaBIOS did not assign the device's I/O BAR0 within {STEP_TIMEOUT_S:.0f}s")


#: QEMU trace events (`-trace NAME`, QEMU's log backend writes them to stderr) for the source VMs;
#: the attempt record keeps their lines (`trace`) and what QEMU counted in its exact pending-size
#: queries (`pending_exact`: vfio_state_pending_exact, one per query, with the stop-copy size it took
#: from MIG_DATA_SIZE or its 100 GiB fallback). `--trace` adds events.
PENDING_EXACT = "vfio_state_pending_exact"
DEFAULT_TRACE = [PENDING_EXACT, "migration_thread_low_pending"]
TRACE_EVENTS: list[str] = list(DEFAULT_TRACE)
TRACE_KEEP = 60              # trace lines kept from the start and from the end of a source's stderr


def trace_lines(stderr: str, events: list[str]) -> list[str]:
    """The lines of `stderr` that are trace output of `events` (first and last TRACE_KEEP of them)."""
    names = tuple(e.rstrip("*") for e in events)
    lines = [line.strip() for line in stderr.splitlines()
             if names and any(f":{n}" in line or line.strip().startswith(n) for n in names)]
    if len(lines) > 2 * TRACE_KEEP:
        lines = lines[:TRACE_KEEP] + [f"... {len(lines) - 2 * TRACE_KEEP} lines ..."] + lines[-TRACE_KEEP:]
    return lines


_EXACT = re.compile(PENDING_EXACT + r"\s+\(([^)]*)\) precopy (\d+) postcopy \d+ stopcopy size (\d+)")


def pending_exact(lines: list[str]) -> dict[str, Any]:
    """What QEMU's exact pending-size queries counted, from vfio_state_pending_exact trace lines:
    {'queries': n, 'stopcopy': [distinct stop-copy sizes, in order], 'last_pending': bytes}."""
    stopcopy: list[int] = []
    count, last = 0, None
    for line in lines:
        match = _EXACT.search(line)
        if match:
            count += 1
            last = int(match.group(2))
            if int(match.group(3)) not in stopcopy:
                stopcopy.append(int(match.group(3)))
    return {"queries": count, "stopcopy": stopcopy, "last_pending": last}


def migrate_once(root: Path, src: str, dst: str, label: str, options: tuple[str, ...]) -> dict[str, Any]:
    """One source -> file -> destination migration; returns the attempt record."""
    value = VALUES.get(label, 0x5A)
    rec: dict[str, Any] = {"label": label, "options": list(options), "ok": False, "stage": "",
                           "error": "", "written": value, "read": None, "port": None, "seconds": {}}
    stream = f"/tmp/vc-{label}.mig"
    (root / "tmp" / f"vc-{label}.mig").unlink(missing_ok=True)
    t0 = time.monotonic()
    vms: list[Vm] = []

    def lap(name: str) -> None:
        rec["seconds"][name] = round(time.monotonic() - t0, 2)

    try:
        source = Vm(root, f"src-{label}", src, MIGRATION_ON + options,
                    tuple(a for e in TRACE_EVENTS for a in ("-trace", e)))
        vms.append(source)
        lap("source-up")
        port = _wait_bar(source) + SCRATCH
        rec["port"] = port
        lap("bios")
        source.hmp("write", f"o /b {port:#x} {value:#x}")
        got = parse_port_read(source.hmp("write", f"i /b {port:#x}"))
        if got != value:
            raise StepError("write", f"source scratch register reads {got:#04x} after writing {value:#04x}")
        source.cmd("migrate", "migrate-set-parameters", **{"max-bandwidth": MAX_BANDWIDTH})
        source.cmd("migrate", "migrate", uri=f"file:{stream}")
        done = source.wait_migration("migrate", MIGRATE_TIMEOUT_S)
        rec["migration"] = {"total-time-ms": done.get("total-time"),
                            "ram-transferred": done.get("ram", {}).get("transferred"),
                            "dirty-sync-count": done.get("ram", {}).get("dirty-sync-count")}
        lap("migrated")
        source.stop()
        rec.setdefault("stderr", {})[source.name] = source.stderr()[-4000:]
        if TRACE_EVENTS:
            rec["trace"] = trace_lines(source.stderr(), TRACE_EVENTS)
            rec["pending_exact"] = pending_exact(source.stderr().splitlines())
        rec["warnings"] = qemu_warnings(source.stderr())
        vms.remove(source)
        dest = Vm(root, f"dst-{label}", dst, MIGRATION_ON + options, ("-incoming", "defer"))
        vms.append(dest)
        dest.cmd("incoming", "migrate-incoming", uri=f"file:{stream}")
        dest.wait_migration("incoming")
        lap("incoming")
        rec["read"] = parse_port_read(dest.hmp("read", f"i /b {port:#x}"))
        if rec["read"] != value:
            raise StepError("compare", f"destination scratch register reads {rec['read']:#04x}, "
                                       f"the source wrote {value:#04x}")
        rec["ok"] = True
    except StepError as exc:
        rec["stage"], rec["error"] = exc.stage, str(exc)
    except (OSError, ValueError) as exc:
        rec["stage"], rec["error"] = "harness", f"{type(exc).__name__}: {exc}"
    finally:
        for vm in vms:
            vm.stop()
            rec.setdefault("stderr", {})[vm.name] = vm.stderr()[-4000:]
            if TRACE_EVENTS and vm.name.startswith("src-") and "trace" not in rec:
                rec["trace"] = trace_lines(vm.stderr(), TRACE_EVENTS)
                rec["pending_exact"] = pending_exact(vm.stderr().splitlines())
            warnings = rec.setdefault("warnings", [])
            warnings += [w for w in qemu_warnings(vm.stderr()) if w not in warnings]
        (root / "tmp" / f"vc-{label}.mig").unlink(missing_ok=True)
        lap("total")
    return rec


def probe_pci(root: Path, bdf: str) -> dict[str, Any]:
    """A VM with a plain vfio-pci device, as a user starts it (no options), asked to migrate.

    Without a migration-capable variant driver QEMU registers a migration blocker and `migrate`
    fails with its reason; the attempt record keeps that text.
    """
    rec: dict[str, Any] = {"label": "default", "options": [], "ok": False, "stage": "", "error": "",
                           "written": 0, "read": None, "port": None, "seconds": {}}
    t0 = time.monotonic()
    vm = None
    try:
        vm = Vm(root, "pci-src", bdf, ())
        rec["seconds"]["source-up"] = round(time.monotonic() - t0, 2)
        vm.cmd("migrate", "migrate", uri="file:/tmp/vc-pci.mig")
        vm.wait_migration("migrate")
        rec["ok"] = True
    except StepError as exc:
        rec["stage"], rec["error"] = exc.stage, str(exc)
    except (OSError, ValueError) as exc:
        rec["stage"], rec["error"] = "harness", f"{type(exc).__name__}: {exc}"
    finally:
        if vm is not None:
            vm.stop()
            rec["stderr"] = {vm.name: vm.stderr()[-4000:]}
            rec["warnings"] = qemu_warnings(vm.stderr())
        (root / "tmp" / "vc-pci.mig").unlink(missing_ok=True)
        rec["seconds"]["total"] = round(time.monotonic() - t0, 2)
    return rec


def enter_chroot(root: Path) -> None:
    """Bind /dev, /sys, /proc into the chroot and give it a private tmpfs /tmp (idempotent)."""
    mounted = Path("/proc/self/mounts").read_text()
    for name in (*BIND_MOUNTS, "tmp"):
        target = root / name
        if f" {target} " in mounted:
            continue
        target.mkdir(exist_ok=True)
        argv = ["mount", "-t", "tmpfs", "tmpfs", str(target)] if name == "tmp" else \
            ["mount", "--rbind", f"/{name}", str(target)]
        subprocess.run(argv, check=True, capture_output=True)


def qemu_version(root: Path) -> str:
    proc = subprocess.run(["chroot", str(root), QEMU, "--version"], capture_output=True, text=True,
                          timeout=STEP_TIMEOUT_S)
    return proc.stdout.splitlines()[0].strip() if proc.stdout else proc.stderr.strip()


def run_pair(root: Path, profile: str, src: str, dst: str) -> dict[str, Any]:
    """The default attempt and, only if it fails, the workaround attempt for one profile."""
    attempts = []
    for label, options in ATTEMPTS_RUN:
        attempts.append(migrate_once(root, src, dst, label, options))
        print(f"consumer {profile} {label}: {'ok' if attempts[-1]['ok'] else 'FAILED'} "
              f"{attempts[-1]['stage']} {attempts[-1]['error']} {attempts[-1]['seconds']}", flush=True)
        if attempts[-1]["ok"]:
            break
    return {"profile": profile, "source": src, "destination": dst, "attempts": attempts}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="the trixie chroot with QEMU")
    parser.add_argument("--out", type=Path, required=True, help="JSON output file")
    parser.add_argument("--trace", action="append", default=[], metavar="EVENT",
                        help="another QEMU trace event (pattern) for the source VMs; lines kept in `trace`")
    parser.add_argument("--only", choices=[label for label, _ in ATTEMPTS],
                        help="run only this attempt (default: the default options, then the workaround)")
    parser.add_argument("pairs", nargs="+", metavar="PROFILE=SRC_UUID,DST_UUID|PROFILE=BDF",
                        help="an mdev pair to migrate, or a vfio-pci device to ask QEMU to migrate")
    args = parser.parse_args(argv)
    TRACE_EVENTS[:] = DEFAULT_TRACE + [e for e in args.trace if e not in DEFAULT_TRACE]
    if args.only:
        ATTEMPTS_RUN[:] = [a for a in ATTEMPTS if a[0] == args.only]
    doc: dict[str, Any] = {"kernel": os.uname().release, "qemu": "", "setup_error": "", "profiles": []}
    try:
        enter_chroot(args.root)
        doc["qemu"] = qemu_version(args.root)
    except (OSError, subprocess.SubprocessError) as exc:
        doc["setup_error"] = f"{type(exc).__name__}: {exc}"
    if not doc["setup_error"]:
        for pair in args.pairs:
            profile, _, devices = pair.partition("=")
            src, _, dst = devices.partition(",")
            if dst:
                doc["profiles"].append(run_pair(args.root, profile, src, dst))
            else:
                rec = probe_pci(args.root, src)
                print(f"consumer {profile} vfio-pci: {rec['stage']} {rec['error']}", flush=True)
                doc["profiles"].append({"profile": profile, "source": src, "destination": "",
                                        "attempts": [rec]})
            args.out.write_text(json.dumps(doc, indent=2) + "\n")
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    os.sync()
    return 3 if doc["setup_error"] else 0


if __name__ == "__main__":
    sys.exit(main())
