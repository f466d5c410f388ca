"""Allure extras (only when --alluredir is given): labels per test, environment, categories,
executor. The `rule` label is the rule a test violated (`checks`: the rules its marks name)."""
from __future__ import annotations

import json
import socket
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


def write_run_files(config, ctx, environments: dict | None = None) -> None:
    """environment.properties (what ran where: the captured environment of each profile's run),
    categories.json and executor.json (who ran it: this harness session) into the results dir."""
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
        env = (environments or {}).get(name)
        for key, value in env.properties() if env is not None else ():
            if key not in ("harness.version", "devices"):
                lines.append(f"profile.{name}.{key}={_property_value(value)}")
    (out / "environment.properties").write_text("\n".join(lines) + "\n")
    (out / "categories.json").write_text(json.dumps(CATEGORIES, indent=2))
    runs = ", ".join(f"{n} #{i}" for n, i in ctx.run_ids.items())
    executor = {"name": "vfio-conform", "type": "vfio-conform", "buildName":
                f"session {ctx.session}" + (f" (runs {runs})" if runs else ""),
                "buildOrder": min(ctx.run_ids.values()) if ctx.run_ids else None,
                "reportName": f"vfio-conform {__version__} on {socket.gethostname()}"}
    (out / "executor.json").write_text(json.dumps(executor, indent=2))


def _property_value(value: str) -> str:
    """One line of a Java properties file (the lspci text is several lines)."""
    return " | ".join(line.strip() for line in value.splitlines() if line.strip()).replace("\\", "\\\\")


#: item.stash key: the profile labels of this test are on its Allure result already.
_LABELLED = pytest.StashKey[bool]()


def profile_labels(item) -> None:
    """parent_suite = profile, suite = spec area, tag = FSM arc, issue link for waivers (once per
    test: from the autouse fixture, or from the verdict of a test skipped before its fixtures)."""
    profile = item_param(item, "profile")
    if profile is None or alluredir(item.config) is None or item.stash.get(_LABELLED, False):
        return
    item.stash[_LABELLED] = True
    import allure
    from .context import CONTEXT_KEY
    ctx = item.config.stash.get(CONTEXT_KEY, None)
    target = ctx.targets.get(profile.name) if ctx else None
    allure.dynamic.parent_suite(profile.name)
    allure.dynamic.label("profile", profile.name)
    if target is not None:
        allure.dynamic.label("driver", target.driver)
        allure.dynamic.parameter("devices", ",".join(target.device_ids), excluded=True)
        allure.dynamic.parameter("driver", target.driver, excluded=True)
        allure.dynamic.parameter("kernel", ctx.kernel_release, excluded=True)
    module = item.module.__name__
    allure.dynamic.suite(module.split(".")[-2] if "." in module else module)
    arc = item_param(item, "arc")
    if arc is not None:
        allure.dynamic.tag(arc.arc_id)
        allure.dynamic.label("arc", arc.arc_id)
    for rule_id in spec_ids(item):
        allure.dynamic.label("checks", rule_id)
    for issue in profile.waivers_for(item.name):
        allure.dynamic.issue(issue.link, f"{issue.rule}: {issue.reason}")


@pytest.fixture(autouse=True)
def _vc_allure_labels(request):
    profile_labels(request.node)
    yield


def allure_outcome(item, rec: TestRecord) -> None:
    """The record's verdict as labels of the test's Allure result (read from the record, once)."""
    if alluredir(item.config) is None:
        return
    import allure
    profile_labels(item)
    allure.dynamic.label("outcome", rec.outcome.value)
    if rec.outcome in (Outcome.FAIL, Outcome.KNOWN_ISSUE) and rec.rule:
        allure.dynamic.label("rule", rec.rule)
    for rule_id in rec.should:
        allure.dynamic.label("should_not_met", rule_id)
    if rec.arc_from:
        allure.dynamic.label("arc_from", rec.arc_from)
        allure.dynamic.label("arc_to", rec.arc_to)
    if rec.waiver_index is not None:
        allure.dynamic.label("waiver", f"known_issues[{rec.waiver_index}]")
    if rec.hazard:
        allure.dynamic.label("hazard", rec.hazard)
