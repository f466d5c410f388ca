"""The machine-readable run summary (`run --json FILE`, `results --json`): docs/json-summary.md,
JSON Schema docs/json-summary.schema.json."""
from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

from .. import __version__
from ..base.outfile import write_text
from ..base.build import harness_build
from .run_verdicts import ProfileSummary, overall

#: The `schema` value of the document; bump the number on an incompatible change.
SCHEMA_ID = "vfio-conform/run-summary/1"


def document(profiles: list[ProfileSummary]) -> dict:
    """The summary as a JSON-ready dict (see docs/json-summary.md)."""
    return {
        "schema": SCHEMA_ID,
        "harness_version": __version__,
        "harness_build": harness_build().as_dict(),
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "verdict": overall(profiles).value,
        "complete": all(p.complete for p in profiles),
        "sessions": list(dict.fromkeys(p.session for p in profiles if p.session)),
        "profiles": [_profile(p) for p in profiles],
    }


def _profile(p: ProfileSummary) -> dict:
    return {
        "profile": p.profile, "run_id": p.run_id, "session": p.session or None,
        "devices": list(p.devices), "kernel": p.kernel, "counts": dict(p.counts), "total": p.total,
        "root_causes": p.root_causes,
        "verdict": p.verdict.value, "status": p.status, "reason": p.reason or None,
        "reason_text": p.reason_text or None, "reports": dataclasses.asdict(p.reports),
        "performance": p.performance,
        "verdict_text": p.verdict_text, "complete": p.complete,
        "selection": {"selected": p.selected, "total": p.suite_total},
        "host": p.host or None, "harness_build": p.harness_build or None,
    }


def dumps(profiles: list[ProfileSummary]) -> str:
    return json.dumps(document(profiles), indent=2) + "\n"


def write(profiles: list[ProfileSummary], path: str | os.PathLike) -> Path:
    """Write the document through the shared output writer (a regular file atomically: a reader
    never sees half a file; a device or FIFO in place); returns the path."""
    return write_text(path, dumps(profiles), "JSON summary")
