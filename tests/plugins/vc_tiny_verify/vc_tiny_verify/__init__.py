"""Third-party extensions found by entry point: verify hook `tiny-bar2`, report format `json-summary`."""
from __future__ import annotations

import collections
import hashlib
import json

from vfio_conform.report.formats import ReportFormat
from vfio_conform.verify.base import Verifier

#: Region 2 (BAR2) window the hook writes.
OFFSET, LENGTH = 64, 48


def pattern(tag: int) -> bytes:
    return (hashlib.sha256(f"tiny:{tag}".encode()).digest() * 2)[:LENGTH]


class TinyBar2(Verifier):
    """A tag-derived pattern in 48 bytes of BAR2."""

    name = "tiny-bar2"

    def write(self, device, tag: int) -> None:
        device.region_write(2, OFFSET, pattern(tag))

    def check(self, device, tag: int) -> list[str]:
        got = device.region_read(2, OFFSET, LENGTH)
        return [] if got == pattern(tag) else [f"BAR2 [{OFFSET:#x}, +{LENGTH}) does not hold tag {tag}"]


def _summary(runs: list) -> str:
    out = []
    for run in runs:
        counts = collections.Counter(row["outcome"] for row in run.rows)
        out.append({"run": run.id, "profile": run.profile, "outcomes": dict(sorted(counts.items()))})
    return json.dumps(out, indent=1) + "\n"


JSON_SUMMARY = ReportFormat("json-summary", ".json", _summary, "outcome counts per run (JSON)")
