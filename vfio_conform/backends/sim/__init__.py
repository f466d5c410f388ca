"""The sim backend: an in-process reference VFIO device with the v2 migration uAPI and fault knobs."""
from .config import SimConfig
from .device import SimDevice
from .faults import FAULTS, ActiveFaults, Fault, faults_for_rule
from .backend import open_sim
from .transport import SimTransport

__all__ = ["SimConfig", "SimDevice", "SimTransport", "open_sim", "FAULTS", "Fault", "ActiveFaults",
           "faults_for_rule"]
