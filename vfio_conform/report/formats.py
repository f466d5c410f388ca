"""Report formats: how `vfio-conform report` renders stored runs (`--format NAME`).

A format is a member of the `vfio_conform.reports` extension group (vfio_conform/base/extensions.py):
the built-in `html`, plus any package declaring an entry point there whose target is a
ReportFormat. JUnit XML, KTAP and Allure results are written by the plugin at the end of the run
(`--vc-junit`, `--vc-ktap`, `--vc-allure`: from the records, see docs/ci-formats.md), not from the store.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from ..base.extensions import REPORTS, ExtensionError


@dataclasses.dataclass(frozen=True)
class ReportFormat:
    """One output format.

    Args:
        name: the `--format` value (unique in the group).
        suffix: file name suffix of the default output (e.g. '.html').
        render: runs -> the file's text; runs are vfio_conform.report.runs.RunData (meta: the run's
            row, rows: its results as dicts with test_id, outcome, rule, message, ...).
        description: one line for `--help`.
    """

    name: str
    suffix: str
    render: Callable[[list], str]
    description: str = ""


def get(name: str) -> ReportFormat:
    """The format registered as `name` (ValueError listing the known ones)."""
    try:
        fmt = REPORTS.load(name)
    except ExtensionError as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(fmt, ReportFormat):
        raise ValueError(f"report format {name!r} is {fmt!r}, not a ReportFormat")
    return fmt


def names() -> list[str]:
    return REPORTS.names()


def _html(runs: list) -> str:
    from .html import render_report
    return render_report(runs)


HTML = ReportFormat("html", ".html", _html, "static HTML conformance report")
