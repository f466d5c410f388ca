"""The sim's PCI Express capability with Function Level Reset (sim key `pcie_flr: true`).

Config space gets a capability list with one PCI Express capability at 0x40 whose Device
Capabilities report FLR (bit 28). Writing Device Control with bit 15 ("Initiate Function Level
Reset") set resets the function as vfio-pci does through pci_try_reset_function() for a variant
driver: the migration state becomes RUNNING and every session ends. The bit reads back as 0.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Protocol

from ...model.fsm import SAVING_GROUP
from ...uapi.enums import MigState

if TYPE_CHECKING:
    from .dma import DmaLog
    from .faults import ActiveFaults
    from .regions import Region
    from .sessions import Session


class FlrDevice(Protocol):
    """What a function reset changes of the sim device (a SimDevice): its state, session and DMA logging."""

    state: MigState
    session: Session | None
    faults: ActiveFaults
    dma: DmaLog
    _reports_running: bool

    def _end_session(self) -> None: ...


CAP = 0x40
DEVCTL = CAP + 0x08
_FLR_BIT = 1 << 15


def install(region: "Region") -> None:
    """Put the capability into the config region's contents."""
    status = int.from_bytes(os.pread(region.fd, 2, 0x06), "little") | (1 << 4)
    os.pwrite(region.fd, status.to_bytes(2, "little"), 0x06)
    os.pwrite(region.fd, bytes([CAP]), 0x34)
    cap = bytearray(0x14)
    cap[0:2] = bytes([0x10, 0x00])                        # PCI Express, last capability
    cap[2:4] = (0x0002).to_bytes(2, "little")             # version 2, PCI Express endpoint
    cap[4:8] = ((1 << 28) | (1 << 15)).to_bytes(4, "little")   # DevCap: FLR, role-based errors
    cap[8:10] = (0x2810).to_bytes(2, "little")            # DevCtl: MPS 128, MRRS 512, relaxed ordering
    os.pwrite(region.fd, bytes(cap), CAP)


def after_write(device: FlrDevice, region: Region, off: int, size: int) -> None:
    """A config write that set Initiate FLR resets the function (the fault knobs bend it)."""
    if not (off <= DEVCTL + 1 and off + size > DEVCTL + 1):
        return
    devctl = int.from_bytes(os.pread(region.fd, 2, DEVCTL), "little")
    if not devctl & _FLR_BIT:
        return
    os.pwrite(region.fd, (devctl & ~_FLR_BIT).to_bytes(2, "little"), DEVCTL)
    faults = device.faults
    if faults.fire("flr_keeps_state"):
        device._end_session()
        return
    if device.session is not None and device.state in SAVING_GROUP and faults.fire("flr_keeps_session"):
        device.state = MigState.RUNNING
        return
    device._end_session()
    device.state = MigState.RUNNING
    device._reports_running = False
    device.dma.stop()
