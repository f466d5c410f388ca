"""vfio-user as a registered backend: device emulators behind a vfio-user server socket."""
from __future__ import annotations

from ...model.spec import MESSAGES
from ...device.sanitizers import ServerLogFile
from ..registry import Backend
from .serve import log_path
from .register import PREFIX, check_device_ids, socket_path
from .transport import VfioUserTransport


class VfioUserBackend(Backend):
    """A vfio-user server (e.g. libvfio-user) reached over its UNIX socket.

    It takes no `backend_config.vfio-user` keys. Migration data moves in
    VFIO_USER_MIG_DATA_READ/WRITE messages, not through a kernel data fd (`transport`).
    """

    name = "vfio-user"
    transport = MESSAGES

    def check_devices(self, profile, device_ids: tuple[str, ...]) -> str:
        """Refuse an empty socket path or one socket named twice; nothing is connected."""
        return check_device_ids(tuple(device_ids))

    def open(self, profile, device_id: str, role: str) -> VfioUserTransport:
        """Connect to the server at `device_id` and negotiate the version."""
        return open_vfio_user(device_id, io_timeout=profile.timeouts.io)

    def server_log(self, device_id: str) -> ServerLogFile:
        """The server's output, `<socket>.log` (as `serve` writes it), read for sanitizer reports.
        FileNotFoundError when the server was not started that way (nothing is checked then)."""
        return ServerLogFile(str(log_path(socket_path(device_id))))


def open_vfio_user(device_id: str, *, io_timeout: float = 30.0) -> VfioUserTransport:
    """Connect to the vfio-user server at `device_id` and negotiate the version."""
    path = socket_path(device_id)
    return VfioUserTransport(path, io_timeout=io_timeout, name=f"{PREFIX}{path}")


BACKEND = VfioUserBackend()
