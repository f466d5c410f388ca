"""A fault-injecting vfio-user proxy: sits between the harness and a server, framing messages.

Each direction is read message by message (16-byte header, then msg_size - 16 bytes, fds kept
with SCM_RIGHTS). A fault fires on the first server reply to command `cmd`:
  drop     - the reply is swallowed (the client must time out)
  truncate - half the reply is sent, then the connection is closed
  delay    - the reply is held for `delay` seconds
  close    - the connection is closed instead of the reply
  bad_id   - the reply's msg_id is changed
  short    - the reply's msg_size says 8 (less than a header)
"""
from __future__ import annotations

import array
import os
import socket
import struct
import threading
import time

HEADER = struct.Struct("<HHIII")


def _recv_exact(sock, size, fds):
    out = b""
    while len(out) < size:
        data, anc, _, _ = sock.recvmsg(size - len(out), socket.CMSG_SPACE(64 * 4))
        for level, kind, blob in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                arr = array.array("i")
                arr.frombytes(blob[:len(blob) - len(blob) % 4])
                fds.extend(arr)
        if not data:
            return None
        out += data
    return out


def _read_msg(sock):
    fds: list[int] = []
    head = _recv_exact(sock, HEADER.size, fds)
    if head is None:
        return None
    size = HEADER.unpack(head)[2]
    body = _recv_exact(sock, max(0, size - HEADER.size), fds)
    if body is None:
        return None
    return head + body, fds


def _hang_up(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def _send(sock, data, fds):
    if fds:
        sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())])
    else:
        sock.sendall(data)
    for fd in fds:
        os.close(fd)


class FaultProxy:
    def __init__(self, listen_path: str, server_path: str, fault: str, cmd: int, delay: float = 0.0,
                 after: int = 0):
        self.listen_path, self.server_path = listen_path, server_path
        self.fault, self.cmd, self.delay = fault, cmd, delay
        self.after = after                     # replies of `cmd` passed on before the fault fires
        self.fired = threading.Event()
        self._lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._lsock.bind(listen_path)
        self._lsock.listen(4)
        self._socks: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        try:
            client, _ = self._lsock.accept()
        except OSError:
            return
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.connect(self.server_path)
        self._socks += [client, server]
        pending: dict[int, int] = {}           # msg_id -> cmd of requests in flight
        threading.Thread(target=self._upstream, args=(client, server, pending), daemon=True).start()
        self._downstream(server, client, pending)

    def _upstream(self, client, server, pending):
        try:
            while True:
                msg = _read_msg(client)
                if msg is None:
                    server.shutdown(socket.SHUT_RDWR)
                    return
                data, fds = msg
                msg_id, cmd = HEADER.unpack(data[:HEADER.size])[:2]
                pending[msg_id] = cmd
                _send(server, data, fds)
        except OSError:
            return

    def _downstream(self, server, client, pending):
        try:
            while True:
                msg = _read_msg(server)
                if msg is None:
                    _hang_up(client)
                    return
                data, fds = msg
                msg_id, cmd, size, flags, err = HEADER.unpack(data[:HEADER.size])
                if cmd == self.cmd and not self.fired.is_set() and self.after > 0:
                    self.after -= 1
                elif cmd == self.cmd and not self.fired.is_set():
                    self.fired.set()
                    if self.fault == "drop":
                        continue
                    if self.fault == "close":
                        _hang_up(client)
                        return
                    if self.fault == "truncate":
                        client.sendall(data[:max(1, len(data) // 2)])
                        _hang_up(client)
                        return
                    if self.fault == "delay":
                        time.sleep(self.delay)
                    if self.fault == "bad_id":
                        data = HEADER.pack((msg_id + 7) & 0xFFFF, cmd, size, flags, err) + data[HEADER.size:]
                    if self.fault == "short":
                        data = HEADER.pack(msg_id, cmd, 8, flags, err)
                _send(client, data, fds)
        except OSError:
            return

    def close(self):
        for sock in [self._lsock, *self._socks]:
            try:
                sock.close()
            except OSError:
                pass
        try:
            os.unlink(self.listen_path)
        except FileNotFoundError:
            pass
