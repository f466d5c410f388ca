"""Function Level Reset through config space, as a VMM or a guest driver issues it.

A PCI Express function that can be reset on its own says so in its PCI Express capability:
Device Capabilities (capability + 0x04) bit 28, "Function Level Reset Capability"; software starts
the reset by writing 1 to Device Control (capability + 0x08) bit 15, "Initiate Function Level
Reset" (PCI Express Base Specification, 7.5.3.3 and 7.5.3.4; include/uapi/linux/pci_regs.h
PCI_EXP_DEVCAP_FLR, PCI_EXP_DEVCTL_BCR_FLR). Through VFIO the write goes to the config region
(VFIO_PCI_CONFIG_REGION_INDEX): vfio-pci virtualizes it and resets the function with
pci_try_reset_function() when the device has FLR (drivers/vfio/pci/vfio_pci_config.c,
vfio_exp_config_write), and the variant drivers' reset_done handlers return the migration state
to RUNNING and end every session.
"""
from __future__ import annotations

import time
from collections.abc import Iterable

from .pciconfig import CONFIG, CONFIG_WIDTHS, config_read

STATUS, CAP_PTR = 0x06, 0x34
STATUS_CAP_LIST = 1 << 4
CAP_ID_EXP = 0x10
EXP_DEVCAP, EXP_DEVCTL = 0x04, 0x08
DEVCAP_FLR = 1 << 28
DEVCTL_BCR_FLR = 1 << 15
#: After an FLR software waits 100 ms before it touches the function again (PCIe Base 6.6.2).
FLR_WAIT = 0.1


def pcie_capability(device, widths: Iterable[int] = CONFIG_WIDTHS) -> tuple[int | None, str]:
    """(offset of the PCI Express capability, '') or (None, why there is none)."""
    code, info = device.try_region_info(CONFIG)
    if code or info is None or not info.size:
        return None, "the device has no PCI config region"
    status = config_read(device, STATUS, 2, widths)
    if status is None:
        return None, "the config space Status register cannot be read"
    if not status & STATUS_CAP_LIST:
        return None, "its config space has no capability list (Status bit 4 clear)"
    pos, seen = config_read(device, CAP_PTR, 1, widths), set()
    while pos and pos >= 0x40 and pos not in seen and len(seen) < 48:
        seen.add(pos)
        header = config_read(device, pos & ~3, 2, widths)
        if header is None:
            return None, f"the capability at {pos:#x} cannot be read"
        if header & 0xFF == CAP_ID_EXP:
            return pos & ~3, ""
        pos = header >> 8
    return None, "its config space has no PCI Express capability"


def flr_capability(device, widths: Iterable[int] = CONFIG_WIDTHS) -> tuple[int | None, str]:
    """(offset of the PCI Express capability of a device that offers FLR, '') or (None, why not)."""
    widths = tuple(widths)
    if 2 not in widths:
        return None, f"the profile grants no 2-byte config access (widths {list(widths)}) for Device Control"
    cap, why = pcie_capability(device, widths)
    if cap is None:
        return None, f"no Function Level Reset: {why}"
    devcap = config_read(device, cap + EXP_DEVCAP, 4, widths)
    if devcap is None:
        return None, "no Function Level Reset: Device Capabilities cannot be read"
    if not devcap & DEVCAP_FLR:
        return None, ("no Function Level Reset: its PCI Express Device Capabilities do not offer it "
                      f"(bit 28 clear: {devcap:#010x})")
    return cap, ""


def initiate_flr(device, cap: int, widths: Iterable[int] = CONFIG_WIDTHS) -> int:
    """Write Device Control with Initiate FLR set, then wait the 100 ms; the write's errno."""
    devctl = config_read(device, cap + EXP_DEVCTL, 2, widths) or 0
    code, _ = device.try_region_write(CONFIG, cap + EXP_DEVCTL, (devctl | DEVCTL_BCR_FLR).to_bytes(2, "little"))
    time.sleep(FLR_WAIT)
    return code
