"""Compatibility name for third-party backends: `Transport` lives beside `Device` (vfio_conform/device/transport.py)."""
from ..device.transport import Transport  # noqa: F401
