"""Fault knobs for the depth suites (round trips, hostile streams, random walks, DMA logging, reset).

Rows use `faults.Fault` (import it lazily from `.faults` inside functions if needed to avoid a cycle).
"""
from __future__ import annotations

#: Fault rows merged into faults.FAULTS.
TABLE: list = []
