"""Real-kernel VFIO lab: Debian kernel + mtty variants / emulated PCI devices under QEMU."""
from .config import DEFAULT_PCI_DEVICES, KernelSpec, LabConfig, PciDeviceSpec, default_cache_root
from .errors import LabError
from .modbuild import VARIANTS, Variant
from .session import GUEST_RESULTS, LabResult, LabSession, Prepared

__all__ = ["DEFAULT_PCI_DEVICES", "GUEST_RESULTS", "KernelSpec", "LabConfig", "LabError", "LabResult",
           "LabSession", "PciDeviceSpec", "Prepared", "VARIANTS", "Variant", "default_cache_root"]
