"""SIGTERM as an orderly interruption: the first one raises `Terminated` where the main thread is,
so everything unwinds through its `finally` blocks; a second one kills as usual.

Some steps must not be cut in two: a file descriptor opened but not yet owned by anyone who will
close it, a device bound to a driver but not yet recorded for restoring, a database write. They
run inside `deferred()`: a SIGTERM arriving meanwhile only sets the flag, and the code that owns the
result acts on it (`raise_if_terminated()`) once nothing can be lost. The test runner also checks
the flag at every test boundary.
"""
from __future__ import annotations

import contextlib
import signal
import threading


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is so the run unwinds: fixtures torn down, runs ended."""


#: Set by the first SIGTERM; checked again at every test boundary in case the exception was
#: raised where Python swallows it (a finalizer, a weakref callback) or was deferred.
_TERMINATED = threading.Event()
#: Depth of deferred sections in progress: a SIGTERM then only sets the flag.
_DEFER = [0]
#: The SIGTERM handlers install_sigterm replaced, restored by restore_sigterm (innermost last).
_PREVIOUS: list = []


@contextlib.contextmanager
def deferred():
    """A step a SIGTERM must not cut: the signal arriving meanwhile is only noted (`terminated()`)."""
    _DEFER[0] += 1
    try:
        yield
    finally:
        _DEFER[0] -= 1


def _on_term(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _TERMINATED.set()
    if not _DEFER[0]:
        raise Terminated("SIGTERM")


def install_sigterm(clear: bool = True) -> None:
    """Turn the first SIGTERM into Terminated (a second one kills as usual) until restore_sigterm.
    Main thread only."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        return
    if clear:
        _TERMINATED.clear()
    _PREVIOUS.append(signal.signal(signal.SIGTERM, _on_term))


def install_sigterm_if_default() -> None:
    """install_sigterm, unless the process already handles SIGTERM its own way."""
    if hasattr(signal, "SIGTERM") and signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        install_sigterm()


def restore_sigterm() -> None:
    """Put back the handler the last install_sigterm replaced (unless a SIGTERM already came: then
    the default stays, so a second SIGTERM kills)."""
    if not _PREVIOUS or threading.current_thread() is not threading.main_thread():
        return
    previous = _PREVIOUS.pop()
    if not _TERMINATED.is_set() and signal.getsignal(signal.SIGTERM) is _on_term:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def terminated() -> bool:
    """A SIGTERM arrived since the last install_sigterm (acted on or deferred)."""
    return _TERMINATED.is_set()


def raise_if_terminated() -> None:
    """Raise Terminated when a SIGTERM arrived (outside a deferred section: never inside one)."""
    if _TERMINATED.is_set() and not _DEFER[0]:
        raise Terminated("SIGTERM")


@contextlib.contextmanager
def sigterm_raises():
    """Around a whole command (pytest and the reports after it): SIGTERM raises Terminated."""
    install_sigterm()
    try:
        yield
    finally:
        restore_sigterm()
