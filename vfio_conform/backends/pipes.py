"""The data fd a user-space backend hands out for a migration session: one end of a pipe."""
from __future__ import annotations

import os


def session_pipe_end(saving: bool, flags: int = os.O_CLOEXEC) -> int:
    """A real fd with the access mode a driver gives a data fd: the read end of a fresh pipe for a
    saving session (O_RDONLY), the write end for a resuming one (O_WRONLY). The other end is closed
    at once; the backend routes read/write on the fd itself, no byte flows through the pipe."""
    rd, wr = os.pipe2(flags)
    keep, drop = (rd, wr) if saving else (wr, rd)
    os.close(drop)
    return keep
