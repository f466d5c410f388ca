"""The vfio-user backend: device emulators behind a vfio-user server socket (e.g. libvfio-user)."""
from .connection import VfioUserProtocolError, VfioUserTimeout
from .backend import BACKEND, VfioUserBackend, open_vfio_user
from .register import socket_path
from .transport import VfioUserTransport

__all__ = ["BACKEND", "VfioUserBackend", "VfioUserTransport", "open_vfio_user", "VfioUserProtocolError", "VfioUserTimeout", "socket_path"]
