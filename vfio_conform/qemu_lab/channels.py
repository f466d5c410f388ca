"""The lab guest's output channels: virtio-serial ports that QEMU writes to files of the run dir.

A write to a virtio-serial port reaches QEMU, and so the host file, at once (about 14 us a line
under TCG), where a write to the uncached 9p results share costs 3 ms and an open-append-close
17 ms. Per-test lines (which test started, each result's journal line) and the command's output
go through ports: nothing a guest wrote is lost when it dies, and a test costs no 9p round trip.

A port may be open once: for the lines several processes write (the worker processes), guest.py holds
the port and relays a FIFO under GUEST_CHANNEL_DIR into it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Where the guest's FIFOs of the relayed channels are (a tmpfs in the guest).
GUEST_CHANNEL_DIR = "/run/vfio-lab"


@dataclass(frozen=True)
class Channel:
    """One port: its name in the guest, the host file (relative to the run dir), and whether the
    guest relays a FIFO of that name into it (several writers) or hands the port to the command."""

    key: str
    host_file: str
    relayed: bool

    @property
    def port_name(self) -> str:
        return f"vfio-lab.{self.key}"

    def guest_path(self) -> str:
        """What a process in the guest writes to: the FIFO of a relayed channel."""
        return f"{GUEST_CHANNEL_DIR}/{self.key}"


PROGRESS = Channel("progress", "progress", relayed=True)
JOURNAL = Channel("journal", "reports/results.sqlite.journal", relayed=True)
STDOUT = Channel("stdout", "stdout.txt", relayed=False)
STDERR = Channel("stderr", "stderr.txt", relayed=False)
CHANNELS = (PROGRESS, JOURNAL, STDOUT, STDERR)


def qemu_args(run_dir: Path) -> list[str]:
    """The virtio-serial controller and one port per channel, each written to its host file."""
    args = ["-device", "virtio-serial-pci,id=labser"]
    for channel in CHANNELS:
        path = run_dir / channel.host_file
        path.parent.mkdir(parents=True, exist_ok=True)
        args += ["-chardev", f"file,id=lab-{channel.key},path={path}",
                 "-device", f"virtserialport,bus=labser.0,chardev=lab-{channel.key},"
                            f"name={channel.port_name}"]
    return args


def spec_entries(results_dir: str) -> list[dict]:
    """The channels as guest.py reads them from its spec (guest.py imports nothing of the package);
    `fallback` is the file on the share a guest without the port writes instead."""
    return [{"key": c.key, "port": c.port_name, "relayed": c.relayed,
             "fifo": c.guest_path() if c.relayed else None,
             "fallback": f"{results_dir}/{c.host_file}"} for c in CHANNELS]
