"""Sim-only test hooks: make the device do what the harness cannot make a real device do.

A suite asks `device.test_hooks` (None on the kernel backend) and reports not-supported where a
hook is missing. The hooks only trigger device behaviour; every answer still comes through the uAPI.
"""
from __future__ import annotations

from .sessions import SavingSession


class SimTestHooks:
    """Triggers on one SimDevice."""

    def __init__(self, device):
        self._device = device

    def dma_write(self, iova: int, length: int) -> None:
        """The device DMA-writes `length` bytes at `iova` (logged if inside a started logging range)."""
        self._device.dma.device_write(iova, length)

    def fail_step(self, step: int) -> None:
        """The next SET fails (EIO) when it is about to take its `step`-th single arc (1-based)."""
        self._device.fail_step = step

    def precopy_reinit(self) -> bool:
        """New initial pre-copy data appears on the live pre-copy session; False if there is none."""
        session = self._device.session
        if not isinstance(session, SavingSession) or not hasattr(session, "reinit") or \
                not session.in_precopy or not session.active:
            return False
        session.reinit()
        return True
