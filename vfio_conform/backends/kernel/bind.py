"""Bind one named PCI function to a VFIO driver through `driver_override`, and put it back.

`bind` records what it found (the driver the function was bound to and its `driver_override`),
then writes the target driver into `driver_override`, unbinds the function from its driver and
asks the kernel to probe it (`/sys/bus/pci/drivers_probe`). `restore` undoes exactly that: the old
override, unbind from the VFIO driver, probe again (and `drivers/<old>/bind` if probing picked
another driver). Only the function passed in is ever written to; every sysfs write goes through
`write` so tests can replace the kernel with a fake one.
"""
from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Callable

from ...base.errors import InfraError
from .holdings import held_here, let_go

Writer = Callable[[Path, str], None]


class BindError(InfraError):
    """A sysfs write failed or the function did not end up on the expected driver."""


@dataclasses.dataclass(frozen=True)
class BindRecord:
    """What `bind` changed: the function, its driver and override before, and the driver it bound."""

    bdf: str
    original_driver: str | None
    original_override: str
    target: str

    @property
    def changed(self) -> bool:
        return self.original_driver != self.target

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "BindRecord":
        return cls(str(data["bdf"]), data.get("original_driver"), str(data.get("original_override", "")),
                   str(data["target"]))


def sysfs_write(path: Path, text: str) -> None:
    """One write() of `text` to a sysfs attribute (the kernel acts on each write)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def current_driver(bdf: str, sysfs_root: str | Path = "/sys") -> str | None:
    try:
        return os.path.basename(os.readlink(_dev(bdf, sysfs_root) / "driver"))
    except OSError:
        return None


def current_override(bdf: str, sysfs_root: str | Path = "/sys") -> str:
    """The function's driver_override ('' when unset; the kernel shows '(null)')."""
    try:
        text = (_dev(bdf, sysfs_root) / "driver_override").read_text().strip()
    except OSError:
        return ""
    return "" if text == "(null)" else text


def _dev(bdf: str, sysfs_root: str | Path) -> Path:
    return Path(sysfs_root) / "bus" / "pci" / "devices" / bdf


def bind(bdf: str, target: str, sysfs_root: str | Path = "/sys", write: Writer = sysfs_write,
         settle: float = 5.0) -> BindRecord:
    """Bind `bdf` to `target` (e.g. vfio-pci); the record restores it. Nothing changes if it already is."""
    dev = _dev(bdf, sysfs_root)
    if not dev.exists():
        raise BindError(f"cannot bind {bdf}: no {dev}")
    record = BindRecord(bdf, current_driver(bdf, sysfs_root), current_override(bdf, sysfs_root), target)
    if not record.changed:
        return record
    try:
        _write(write, dev / "driver_override", target)
        if record.original_driver is not None:
            _write(write, dev / "driver" / "unbind", bdf)
        _write(write, Path(sysfs_root) / "bus" / "pci" / "drivers_probe", bdf)
        _wait_driver(bdf, target, sysfs_root, settle)
    except BindError as exc:
        try:
            restore(record, sysfs_root, write, settle)
        except BindError as again:
            raise BindError(f"{exc}; restoring {bdf} failed too: {again}") from None
        raise
    return record


def restore(record: BindRecord, sysfs_root: str | Path = "/sys", write: Writer = sysfs_write,
            settle: float = 5.0, proc_self: str | Path = "/proc/self") -> list[str]:
    """Put the function back on the driver (and override) `bind` found (BindError if it will not go).

    Returns what this process still held of the function and closed first (empty normally): the
    kernel's unbind would otherwise wait for it forever. When something cannot be closed, or the
    process holds a VFIO device the kernel does not name, the function is left where it is
    (BindError) rather than hang the process."""
    bdf, original = record.bdf, record.original_driver
    dev = _dev(bdf, sysfs_root)
    if not dev.exists():
        raise BindError(f"cannot restore {bdf}: it is gone ({dev})")
    if current_override(bdf, sysfs_root) != record.original_override:
        _write(write, dev / "driver_override", record.original_override or "\n")
    now = current_driver(bdf, sysfs_root)
    if now == original:
        return []
    closed: list[str] = []
    if now is not None:
        closed, kept = let_go(bdf)
        held = kept + held_here(proc_self)
        if held:
            raise BindError(f"{bdf} not given back to {original or 'no driver'}: this process still holds "
                            f"a VFIO device ({'; '.join(held[:4])}), and the unbind would wait for it "
                            f"forever; it stays on {now}")
        _write(write, dev / "driver" / "unbind", bdf)
    if original is None:
        _wait_driver(bdf, None, sysfs_root, settle)
        return closed
    _write(write, Path(sysfs_root) / "bus" / "pci" / "drivers_probe", bdf)
    if current_driver(bdf, sysfs_root) != original:
        if current_driver(bdf, sysfs_root) is not None:
            _write(write, dev / "driver" / "unbind", bdf)
        _write(write, Path(sysfs_root) / "bus" / "pci" / "drivers" / original / "bind", bdf)
    _wait_driver(bdf, original, sysfs_root, settle)
    return closed


def _write(write: Writer, path: Path, text: str) -> None:
    try:
        write(path, text)
    except OSError as exc:
        raise BindError(f"writing {text.strip() or 'an empty line'!r} to {path} failed: "
                        f"{exc.strerror or exc}") from None


def _wait_driver(bdf: str, want: str | None, sysfs_root, settle: float) -> None:
    """Probing is synchronous for most drivers; allow `settle` seconds for the others."""
    deadline = time.monotonic() + settle
    while True:
        now = current_driver(bdf, sysfs_root)
        if now == want:
            return
        if time.monotonic() >= deadline:
            raise BindError(f"{bdf} is bound to {now or 'no driver'}, not to {want or 'no driver'}")
        time.sleep(0.05)
