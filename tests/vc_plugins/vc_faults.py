"""Test-only pytest plugin: faults outside the tests, for the fault-injection suite.

VC_RAISE_HOOK=NAME   RuntimeError("injected fault in NAME") from that pytest hook
                     (sessionstart, collection_finish, sessionfinish, terminal_summary, unconfigure).
VC_SIGTERM_AT=PHASE  SIGTERM to this process at: collection (once the tests are collected), tests
                     (during the second test's call), or while one output is written: the `what`
                     of vfio_conform.base.outfile (JUnit XML, KTAP output, Allure results, JSON summary,
                     HTML report).
"""
import contextlib
import os
import signal

import pytest

from vfio_conform.base import outfile
from vfio_conform.outputs import junit

_RAISE = os.environ.get("VC_RAISE_HOOK", "")
_TERM = os.environ.get("VC_SIGTERM_AT", "")
_calls = [0]


def _maybe_raise(hook: str) -> None:
    if _RAISE == hook:
        raise RuntimeError(f"injected fault in {hook}")


def _term() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def pytest_sessionstart(session):
    _maybe_raise("sessionstart")


def pytest_collection_finish(session):
    _maybe_raise("collection_finish")
    if _TERM == "collection":
        _term()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    _calls[0] += 1
    if _TERM == "tests" and _calls[0] == 2:
        _term()


def pytest_sessionfinish(session, exitstatus):
    _maybe_raise("sessionfinish")


def pytest_terminal_summary(terminalreporter):
    _maybe_raise("terminal_summary")


def pytest_unconfigure(config):
    _maybe_raise("unconfigure")


_real_open_output = outfile.open_output


@contextlib.contextmanager
def _open_output(path, what):
    with _real_open_output(path, what) as f:
        if what == _TERM:
            _term()
        yield f


if _TERM:
    outfile.open_output = _open_output
    junit.open_output = _open_output
