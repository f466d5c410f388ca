"""What this process holds of each kernel VFIO device: its open fd sets and its region mappings.

The kernel gives a device back to its driver (an unbind) only once every user has let go; until
then the unbind waits, and it cannot be interrupted. A process that unbinds a device it still holds
itself therefore waits forever (the console says "blocked until released by user"). Before a driver
is given back, `let_go` closes what the harness still holds of that device (a test or a health
check cut short by a signal can leave fds and mappings behind), and `held_here` lists any VFIO
device fd or mapping the process still has, so the unbind is refused instead of hanging.
"""
from __future__ import annotations

import os
import traceback
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import mmap

    from .open_paths import OpenedDevice

#: every fd set opened in this process -> where the open was asked for
_OPENED: weakref.WeakKeyDictionary[OpenedDevice, str] = weakref.WeakKeyDictionary()
_MAPPED: dict[str, weakref.WeakSet[mmap.mmap]] = {}
#: how /proc names a VFIO device's fd and mappings: the group path's anonymous inode, the cdev node
_VFIO_NAMES = ("anon_inode:[vfio-device]", "/dev/vfio/devices/")


def canonical(name: str) -> str:
    """A PCI address with its domain (0000:00:10.0), lower case; any other name as it is."""
    name = name.strip().lower()
    return f"0000:{name}" if name.count(":") == 1 and "." in name else name


def note_opened(opened: OpenedDevice) -> None:
    _OPENED[opened] = _caller()


def _caller() -> str:
    """Where an open was asked for: the innermost caller outside the backends and the device layer
    (opens are few, a handful per device and run: the stack is cheap enough to look at)."""
    for frame in reversed(traceback.extract_stack(limit=16)[:-2]):
        parts = Path(frame.filename).parts
        if "backends" not in parts and "device" not in parts:
            return f"{Path(frame.filename).name}:{frame.lineno} in {frame.name}"
    return "an unknown caller"


def note_mapped(name: str, mapping: mmap.mmap) -> None:
    _MAPPED.setdefault(canonical(name), weakref.WeakSet()).add(mapping)


def let_go(name: str) -> tuple[list[str], list[str]]:
    """Close the mappings and fds of device `name` this process still holds: (what was closed,
    what could not be: a mapping whose memory a live buffer still points into). Both are empty
    when nothing was left open."""
    key = canonical(name)
    closed, kept = [], []
    for mapping in list(_MAPPED.get(key, ())):
        if not mapping.closed:
            try:
                mapping.close()
            except BufferError:
                kept.append("a region mapping still in use by a buffer")
                continue
            closed.append("a region mapping")
    for opened, origin in list(_OPENED.items()):
        if canonical(opened.name) == key and opened.fd_kinds():
            opened.close()
            closed.append(f"its {opened.path_kind} fds opened by {origin}")
    return closed, kept


def held_here(proc_self: str | Path = "/proc/self") -> list[str]:
    """Every VFIO device fd and mapping this process has, of any device (the group path's fds do not
    say which device they are): 'fd 7 (anon_inode:[vfio-device])', 'mapping 7f..-7f.. (...)'."""
    proc = Path(proc_self)
    found = []
    try:
        names = os.listdir(proc / "fd")
    except OSError:
        names = []
    for fd in names:
        try:
            target = os.readlink(proc / "fd" / fd)
        except OSError:
            continue
        if target.startswith(_VFIO_NAMES):
            found.append(f"fd {fd} ({target})")
    try:
        maps = (proc / "maps").read_text().splitlines()
    except OSError:
        maps = []
    for line in maps:
        fields = line.split(None, 5)
        if len(fields) == 6 and fields[5].startswith(_VFIO_NAMES):
            found.append(f"mapping {fields[0]} ({fields[5]})")
    return found
