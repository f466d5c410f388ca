"""One vfio-user client connection: framed, time-limited request/reply with fds (SCM_RIGHTS).

Every socket operation has a deadline. Anything the server does wrong at the protocol level (a
short or oversized message, a reply with the wrong id or command, a closed socket, silence past the
deadline) raises VfioUserProtocolError naming the command; afterwards the connection is broken and
every further request fails at once with the first error. An error *reply* (the ERROR flag) is not a
protocol fault: it becomes OSError(errno), as the kernel's ioctl would.
"""
from __future__ import annotations

import array
import errno
import os
import socket
import time
from dataclasses import dataclass

from ...base.errors import InfraError, RequestAborted
from .protocol import (CLIENT_MAX_MSG_FDS, F_ERROR, HEADER_SIZE, TYPE_MASK, TYPE_REPLY, Capabilities,
                       Cmd, Header, client_version_payload, cmd_name, parse_version_reply)

#: the largest reply accepted (a region read of the max transfer size plus headers, with margin)
_MAX_REPLY = 64 << 20


class VfioUserProtocolError(InfraError):
    """The vfio-user server broke the protocol, closed the socket or did not answer in time."""

    def __init__(self, command: str, message: str, server: str = ""):
        self.command, self.message, self.server = command, message, server
        super().__init__(f"vfio-user {server}: {command}: {message}" if server else f"vfio-user: {command}: {message}")


class VfioUserConnectionLost(VfioUserProtocolError, RequestAborted):
    """The server closed the socket after a request, before any byte of its reply (e.g. it aborted).

    Unlike a garbled or partial reply this is the server's answer to that request: the device
    layer blames the device when the request was legal (RequestAborted), else it stays infra.
    """

    def __init__(self, command: str, message: str, server: str = ""):
        VfioUserProtocolError.__init__(self, command, message, server)
        self.request = command


class VfioUserTimeout(VfioUserProtocolError):
    """The server did not answer within the I/O timeout (a hung server)."""


@dataclass
class Reply:
    header: Header
    payload: bytes
    fds: list[int]


def _lost_before_reply(exc: OSError | None, got: int, fds: list[int], what: str) -> bool:
    """True when the socket closed (EOF or reset) before any byte of a reply: the server's answer."""
    closed = exc is None or exc.errno in (errno.ECONNRESET, errno.EPIPE)
    return closed and got == 0 and not fds and what == "reply header"


def _close_fds(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


class Connection:
    """A connected vfio-user client socket (after version negotiation)."""

    def __init__(self, path: str, timeout: float, connect_timeout: float | None = None):
        self.path, self.timeout = path, timeout
        self._next_id = 0
        self.broken: VfioUserProtocolError | None = None
        deadline = time.monotonic() + (connect_timeout if connect_timeout is not None else timeout)
        while True:
            self.sock = self._connect(path, max(0.05, deadline - time.monotonic()))
            try:
                self.caps = self._negotiate()
                break
            except VfioUserProtocolError as exc:
                # a server that was still shutting down (its predecessor's client just left) resets
                # the new connection: try again while the connect deadline lasts
                self.sock.close()
                if isinstance(exc, VfioUserTimeout) or time.monotonic() >= deadline \
                        or "reset by peer" not in exc.message and "closed the socket" not in exc.message:
                    raise
                self.broken = None
                time.sleep(0.05)

    # -- setup ----------------------------------------------------------------------------
    def _connect(self, path: str, timeout: float) -> socket.socket:
        """Connect, retrying while the socket is absent or refuses (a server being (re)started)."""
        deadline = time.monotonic() + timeout
        last: OSError | None = None
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                sock.connect(path)
                return sock
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                sock.close()
                last = exc
            except OSError as exc:
                sock.close()
                raise VfioUserProtocolError("connect", f"{path}: {exc.strerror or exc}") from None
            if time.monotonic() >= deadline:
                raise VfioUserTimeout("connect", f"{path}: no server listening after {timeout:g} s "
                                      f"({last.strerror if last else 'timeout'})")
            time.sleep(0.05)

    def _negotiate(self) -> Capabilities:
        reply = self.request(Cmd.VERSION, client_version_payload())
        _close_fds(reply.fds)
        try:
            caps = parse_version_reply(reply.payload)
        except ValueError as exc:
            raise self._fail(VfioUserProtocolError(cmd_name(Cmd.VERSION), f"bad reply: {exc}", self.path))
        if caps.major != 0:
            raise self._fail(VfioUserProtocolError(cmd_name(Cmd.VERSION),
                                                   f"server speaks version {caps.major}.{caps.minor}, "
                                                   "this client 0.x", self.path))
        return caps

    # -- request/reply ----------------------------------------------------------------------
    def _fail(self, exc: VfioUserProtocolError) -> VfioUserProtocolError:
        if self.broken is None:
            self.broken = exc
        return exc

    def request(self, cmd: int, payload: bytes = b"", fds: list[int] | None = None,
                timeout: float | None = None) -> Reply:
        """Send one command and wait for its reply. OSError(errno) for an error reply."""
        name = cmd_name(cmd)
        if self.broken is not None:
            raise VfioUserProtocolError(name, f"connection unusable after an earlier fault ({self.broken})",
                                        self.path)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self._next_id = (self._next_id + 1) & 0xFFFF
        msg_id = self._next_id
        header = Header(msg_id, int(cmd), HEADER_SIZE + len(payload), 0, 0)
        self._send(name, header.pack() + bytes(payload), fds or [], deadline)
        reply = self._receive(name, deadline)
        h = reply.header
        problem = None
        if h.flags & TYPE_MASK != TYPE_REPLY:
            problem = f"message type {h.flags & TYPE_MASK} where a reply was due (flags {h.flags:#x})"
        elif h.msg_id != msg_id:
            problem = f"reply has msg_id {h.msg_id}, the request had {msg_id}"
        elif h.cmd != int(cmd):
            problem = f"reply is for {cmd_name(h.cmd)}"
        if problem:
            _close_fds(reply.fds)
            raise self._fail(VfioUserProtocolError(name, problem, self.path))
        if h.flags & F_ERROR:
            _close_fds(reply.fds)
            code = h.error_no or errno.EIO
            raise OSError(code, f"{name}: {os.strerror(code)} (vfio-user error reply)")
        return reply

    def _remaining(self, name: str, deadline: float, what: str) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise self._fail(VfioUserTimeout(name, f"no {what} within {self.timeout:g} s (server hung?)",
                                             self.path))
        return left

    def _send(self, name: str, data: bytes, fds: list[int], deadline: float) -> None:
        view = memoryview(data)
        first = True
        while view:
            self.sock.settimeout(self._remaining(name, deadline, "room to send"))
            try:
                if first and fds:
                    n = self.sock.sendmsg([view], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                                    array.array("i", fds).tobytes())])
                else:
                    n = self.sock.send(view)
            except socket.timeout:
                raise self._fail(VfioUserTimeout(name, f"send blocked for {self.timeout:g} s (server hung?)",
                                                 self.path)) from None
            except OSError as exc:
                raise self._fail(VfioUserProtocolError(name, f"send failed: {exc.strerror or exc} "
                                                       "(server closed the socket?)", self.path)) from None
            first = False
            view = view[n:]

    def _recv_exact(self, name: str, size: int, deadline: float, fds: list[int], what: str) -> bytes:
        chunks, got = [], 0
        fd_space = socket.CMSG_SPACE(CLIENT_MAX_MSG_FDS * 4)
        while got < size:
            self.sock.settimeout(self._remaining(name, deadline, what))
            try:
                data, anc, flags, _ = self.sock.recvmsg(size - got, fd_space)
            except socket.timeout:
                _close_fds(fds)
                raise self._fail(VfioUserTimeout(name, f"no {what} within {self.timeout:g} s "
                                                 f"({got} of {size} bytes; server hung?)", self.path)) from None
            except OSError as exc:
                _close_fds(fds)
                kind = VfioUserConnectionLost if _lost_before_reply(exc, got, fds, what) else VfioUserProtocolError
                raise self._fail(kind(name, f"receive failed: {exc.strerror or exc}", self.path)) from None
            for level, kind, blob in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    arr = array.array("i")
                    arr.frombytes(blob[:len(blob) - len(blob) % 4])
                    fds.extend(arr)
            if flags & socket.MSG_CTRUNC:
                _close_fds(fds)
                raise self._fail(VfioUserProtocolError(name, "reply carried more fds than announced",
                                                       self.path))
            if not data:
                _close_fds(fds)
                kind = VfioUserConnectionLost if _lost_before_reply(None, got, fds, what) else VfioUserProtocolError
                raise self._fail(kind(
                    name, f"server closed the socket ({got} of {size} bytes of the {what})", self.path))
            chunks.append(data)
            got += len(data)
        return b"".join(chunks)

    def _receive(self, name: str, deadline: float) -> Reply:
        fds: list[int] = []
        raw = self._recv_exact(name, HEADER_SIZE, deadline, fds, "reply header")
        header = Header.unpack(raw)
        if header.msg_size < HEADER_SIZE or header.msg_size > _MAX_REPLY:
            _close_fds(fds)
            raise self._fail(VfioUserProtocolError(name, f"reply msg_size {header.msg_size} is impossible "
                                                   f"(header {HEADER_SIZE}, limit {_MAX_REPLY})", self.path))
        body = self._recv_exact(name, header.msg_size - HEADER_SIZE, deadline, fds, "reply body")
        return Reply(header, body, fds)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
