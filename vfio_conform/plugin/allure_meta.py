"""Allure extras (only when --alluredir is given): labels per test, environment, categories."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from .. import __version__
from ..results import Outcome, TestRecord
from .items import item_param
from .rulecheck import spec_ids

#: Allure categories: infrastructure problems apart from product defects (driver findings). Allure
#: matches categories on status and message only; each test's verdict itself is its `outcome`
#: label (allure_outcome), and a typed skip's message starts with its outcome's value.
CATEGORIES = [
    {"name": "Spec violations (driver)", "matchedStatuses": ["failed", "broken"],
     "messageRegex": "(?s).*(SpecViolation|UapiError|\\[[a-z]+\\.[a-z-]+\\]).*"},
    {"name": "Infrastructure errors (harness, lab, host)", "matchedStatuses": ["broken"]},
    {"name": "Known issues (waived in profile)", "matchedStatuses": ["skipped"],
     "messageRegex": ".*known issue.*"},
    {"name": "Not supported by the device", "matchedStatuses": ["skipped"],
     "messageRegex": f".*{Outcome.NOT_SUPPORTED.value}: .*"},
    {"name": "Gated hazards (not run on this kernel)", "matchedStatuses": ["skipped"],
     "messageRegex": f".*{Outcome.GATED.value}: .*"},
]


def alluredir(config) -> Path | None:
    value = getattr(config.option, "allure_report_dir", None)
    return Path(value) if value else None


def write_run_files(config, ctx) -> None:
    """environment.properties (what ran where) and categories.json into the Allure results dir."""
    out = alluredir(config)
    if out is None or hasattr(config, "workerinput"):
        return
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"harness.version={__version__}", f"kernel.release={ctx.kernel_release}",
             f"session={ctx.session}"]
    for name, target in ctx.targets.items():
        lines += [f"profile.{name}.backend={target.profile.backend}",
                  f"profile.{name}.devices={','.join(target.device_ids)}",
                  f"profile.{name}.driver={target.driver}",
                  f"profile.{name}.flags={int(target.profile.flags)}"]
    (out / "environment.properties").write_text("\n".join(lines) + "\n")
    (out / "categories.json").write_text(json.dumps(CATEGORIES, indent=2))


@pytest.fixture(autouse=True)
def _vc_allure_labels(request):
    """parent_suite = profile, suite = spec area, tag = FSM arc, issue link for waivers."""
    profile = item_param(request.node, "profile")
    if profile is None or alluredir(request.config) is None:
        yield
        return
    import allure
    from .context import CONTEXT_KEY
    ctx = request.config.stash.get(CONTEXT_KEY, None)
    target = ctx.targets.get(profile.name) if ctx else None
    allure.dynamic.parent_suite(profile.name)
    allure.dynamic.label("profile", profile.name)
    if target is not None:
        allure.dynamic.label("driver", target.driver)
        allure.dynamic.parameter("devices", ",".join(target.device_ids), excluded=True)
        allure.dynamic.parameter("driver", target.driver, excluded=True)
        allure.dynamic.parameter("kernel", ctx.kernel_release, excluded=True)
    allure.dynamic.suite(request.node.module.__name__.split(".")[-2] if "." in
                         request.node.module.__name__ else request.node.module.__name__)
    arc = item_param(request.node, "arc")
    if arc is not None:
        allure.dynamic.tag(arc.arc_id)
        allure.dynamic.label("arc", arc.arc_id)
    for rule_id in spec_ids(request.node):
        allure.dynamic.label("rule", rule_id)
    for issue in profile.waivers_for(request.node.name):
        allure.dynamic.issue(issue.link, f"{issue.rule}: {issue.reason}")
    yield


def allure_outcome(item, rec: TestRecord) -> None:
    """The record's verdict as labels of the test's Allure result (read from the record, once)."""
    if alluredir(item.config) is None:
        return
    import allure
    allure.dynamic.label("outcome", rec.outcome.value)
    if rec.outcome in (Outcome.FAIL, Outcome.KNOWN_ISSUE) and rec.rule:
        allure.dynamic.label("violated_rule", rec.rule)
    for rule_id in rec.should:
        allure.dynamic.label("should_not_met", rule_id)
    if rec.arc_from:
        allure.dynamic.label("arc_from", rec.arc_from)
        allure.dynamic.label("arc_to", rec.arc_to)
    if rec.waiver_index is not None:
        allure.dynamic.label("waiver", f"known_issues[{rec.waiver_index}]")
    if rec.hazard:
        allure.dynamic.label("hazard", rec.hazard)
