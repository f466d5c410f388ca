"""The vfio-user device-id syntax.

A device id is `vfio-user:<socket path>` or a plain path to the server's UNIX socket (relative
paths are taken from the current directory).
"""
from __future__ import annotations

import os
import stat

from ...base.errors import ConfigError

PREFIX = "vfio-user:"


def socket_path(device_id: str) -> str:
    """The socket path a device id names (ConfigError for an empty one)."""
    path = device_id[len(PREFIX):] if device_id.startswith(PREFIX) else device_id
    if not path:
        raise ConfigError(f"device {device_id!r}: no socket path",
                          hint="use vfio-user:/path/to/socket or the socket's path")
    return os.path.abspath(path)


def check_device_ids(device_ids: tuple[str, ...]) -> str:
    """Refuse an empty socket path or the same socket named twice (nothing is connected)."""
    seen: dict[str, str] = {}
    for device_id in device_ids:
        path = socket_path(device_id)
        if path in seen:
            raise ConfigError(f"socket {path} is named twice ({seen[path]!r} and {device_id!r}): the "
                              f"source and the destination of a migration must be two servers")
        seen[path] = device_id
    for path in seen:                         # a missing server: exit 2 now, not infra-errors later
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            raise ConfigError(f"vfio-user socket {path}: does not exist (is the server running?)") from None
        except OSError as exc:
            raise ConfigError(f"vfio-user socket {path}: {exc.strerror}") from None
        if not stat.S_ISSOCK(mode):
            raise ConfigError(f"vfio-user socket {path}: is not a UNIX socket")
    return "vfio-user"
