"""The per-test time limit arms a timer per phase; its SIGALRM handler is installed once per session
and handed back at the end."""
import signal
import time
from types import SimpleNamespace

import pytest

from vfio_conform.plugin.timeout import TestTimeout, TestTimer


def test_one_handler_per_session_a_timer_per_phase_and_the_old_handler_back(monkeypatch):
    mine = lambda signum, frame: None       # noqa: E731
    before = signal.signal(signal.SIGALRM, mine)
    try:
        installs = []
        real = signal.signal
        monkeypatch.setattr(signal, "signal", lambda *a: installs.append(a) or real(*a))
        timer, item = TestTimer(), SimpleNamespace(nodeid="t::x")
        for phase in ("setup", "call", "teardown"):
            with timer._alarm(item, phase, 5, 5):
                assert signal.getitimer(signal.ITIMER_REAL)[0] > 0
            assert signal.getitimer(signal.ITIMER_REAL)[0] == 0
        assert len(installs) == 1
        with pytest.raises(TestTimeout, match="exceeded timeouts.test = 0.05s in call"):
            with timer._alarm(item, "call", 0.05, 0.05):
                time.sleep(2)
        assert timer.fired == {"t::x": "call"}
        timer._on_alarm(signal.SIGALRM, None)      # a stray alarm between phases interrupts nothing
        timer.pytest_unconfigure(None)
        assert signal.getsignal(signal.SIGALRM) is mine
    finally:
        signal.signal(signal.SIGALRM, before)
