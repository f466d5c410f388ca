"""Fault knobs for regions, the legacy v1 migration region and region-size mismatch.

Rows use `faults.Fault` (import it lazily from `.faults` inside functions if needed to avoid a cycle).
"""
from __future__ import annotations

#: Fault rows merged into faults.FAULTS.
TABLE: list = []
