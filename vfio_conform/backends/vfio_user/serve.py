"""Keep a vfio-user server listening on a socket: libvfio-user's sample server serves one client
and exits when it disconnects, while the harness opens the device afresh for every test.

    python3 -m vfio_conform.backends.vfio_user.serve SOCKET [--sanitized | --server PATH] [--log FILE]

restarts `server SOCKET` (default: the cached libvfio-user sample build; `--sanitized`: its
AddressSanitizer + UndefinedBehaviorSanitizer build) each time it exits, until SIGTERM/SIGINT.
`Supervisor` does the same in-process for the tests. The server's stdout and stderr are appended to
`SOCKET.log` (`log_path`), where the harness looks for sanitizer reports during each test
(plugin/sanitizers.py); leak checking at exit is off (a leak at exit belongs to no test) unless
ASAN_OPTIONS says otherwise.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from .build import DEFAULT_COMMIT, sanitized_server_path, server_path

#: Sanitizer settings for the servers run here (a value already in the environment wins).
SANITIZER_ENV = {"ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0",
                 "UBSAN_OPTIONS": "print_stacktrace=1"}


def log_path(socket: str | Path) -> Path:
    """Where a served server's output goes: next to its socket (the harness reads it there)."""
    return Path(f"{socket}.log")


class Supervisor:
    """Run `command + [socket]` and restart it whenever it exits (a thread), until stop()."""

    def __init__(self, socket: str | Path, command: list[str], log: Path | None = None,
                 restart_delay: float = 0.02):
        self.socket, self.command = str(socket), list(command)
        self.log = log if log is not None else log_path(self.socket)
        self.restart_delay = restart_delay
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.exit_codes: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"vfio-user {self.socket}", daemon=True)

    def start(self, ready_timeout: float = 10.0) -> "Supervisor":
        self._thread.start()
        deadline = time.monotonic() + ready_timeout
        while not os.path.exists(self.socket):
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.stop()
                raise RuntimeError(f"{' '.join(self.command)} {self.socket}: no socket after "
                                   f"{ready_timeout:g} s (exit codes {self.exit_codes})")
            time.sleep(0.02)
        return self

    def _spawn(self) -> subprocess.Popen:
        try:
            os.unlink(self.socket)
        except FileNotFoundError:
            pass
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        try:
            env = {**SANITIZER_ENV, **os.environ}
            return subprocess.Popen(self.command + [self.socket], stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT if self.log else subprocess.DEVNULL, env=env)
        finally:
            if self.log:
                out.close()

    def _loop(self) -> None:
        delay = self.restart_delay
        while not self._stop.is_set():
            self.proc = self._spawn()
            self.starts += 1
            started = time.monotonic()
            while self.proc.poll() is None and not self._stop.is_set():
                time.sleep(0.02)
            if self._stop.is_set():
                break
            self.exit_codes.append(self.proc.returncode)
            # a server that dies at once (e.g. refuses its configuration) is retried ever more slowly
            quick_failure = self.proc.returncode != 0 and time.monotonic() - started < 0.5
            delay = min(2.0, delay * 2) if quick_failure else self.restart_delay
            self._stop.wait(delay)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        if self._thread.is_alive():
            self._thread.join(timeout)
        try:
            os.unlink(self.socket)
        except FileNotFoundError:
            pass

    def __enter__(self) -> "Supervisor":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="vfio_conform.backends.vfio_user.serve")
    ap.add_argument("socket")
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--server", default=None, help="the server binary (default: the cached sample build)")
    which.add_argument("--sanitized", action="store_true",
                       help="the sample server's ASan+UBSan build (scripts/install-vfio-user.sh builds it)")
    ap.add_argument("--log", type=Path, help="where the server's output goes (default: SOCKET.log)")
    args = ap.parse_args(argv)
    args.server = args.server or str(sanitized_server_path(DEFAULT_COMMIT) if args.sanitized
                                     else server_path(DEFAULT_COMMIT))
    if not os.access(args.server, os.X_OK):
        print(f"serve: {args.server}: not built (run scripts/install-vfio-user.sh)", file=sys.stderr)
        return 2
    sup = Supervisor(args.socket, [args.server], args.log)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    sup.start()
    print(f"serving {args.socket}", flush=True)
    done.wait()
    sup.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
