"""JUnit XML from the run's TestRecords: one <testsuite> per profile, its environment as properties.

Written by the harness itself (not pytest's --junitxml, which puts every profile in one `pytest`
suite and reads testcase properties before the verdict exists). Mapping of outcomes:
fail -> <failure>, infra-error -> <error>, known-issue / not-supported / gated / skipped ->
<skipped>, pass -> nothing; the element's `type` is the outcome and its `message` starts with the
outcome and the rule (`fail [fsm.legal-arc]: ...`), the two places every JUnit consumer shows.

By default the file is valid against the Jenkins xunit plugin's JUnit schema (junit-10.xsd): no
<properties> inside a <testcase>, no `skipped` on <testsuites>. `rich=True` (`--vc-junit-properties`)
adds each test's record fields as <properties> of its <testcase> (what pytest's own JUnit and some
parsers read; not valid against that schema).
"""
from __future__ import annotations

import dataclasses
import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from ..base.outfile import write_bytes
from ..base.verdicts import JUNIT_SKIPPED
from ..results import Outcome, TestRecord
from ..results import rootcause
from ..results.environment import Environment

#: XML 1.0 cannot hold most control characters (a device's bytes may end up in a message).
_BAD_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
SKIP_TYPES = JUNIT_SKIPPED


@dataclasses.dataclass
class SuiteInput:
    """One profile's part of a run: its name, run id, environment and one record per test."""

    profile: str
    records: list[TestRecord]
    environment: Environment | None = None
    run_id: int | None = None
    session: str = ""
    host: str = ""          # the run's host (the store's --host), JUnit's `hostname`
    #: 'complete 231/231' or 'subset 24/231' (selection.ProfileSelection.label); '' when not known
    selection: str = ""


def _text(value: str) -> str:
    return _BAD_XML.sub("?", value)


def classname(nodeid: str) -> str:
    """'suites.fsm.test_arcs' for 'suites/fsm/test_arcs.py::test_arc[...]'."""
    return nodeid.split("::", 1)[0].removesuffix(".py").replace("/", ".")


def suite_properties(suite: SuiteInput) -> list[tuple[str, str]]:
    """The suite's <properties>: the environment (kernel, driver, srcversion, firmware, ...)."""
    props = [("profile", suite.profile),
             ("vc.root_causes", str(len(rootcause.count(suite.records))))]   # defects beside failures
    if suite.run_id is not None:
        props.append(("run.id", str(suite.run_id)))
    if suite.session:
        props.append(("session", suite.session))
    if suite.selection:
        props.append(("selection", suite.selection))
    env = suite.environment
    if env is not None:
        def joined(field: str) -> str:
            return ",".join(dict.fromkeys(getattr(d, field) for d in env.devices))
        props += [("kernel", env.kernel_release), ("driver", joined("driver")),
                  ("srcversion", joined("srcversion")), ("firmware", env.firmware)]
        props += env.properties()
    return props


def _counts(records: list[TestRecord], skipped: bool = True) -> dict[str, str]:
    """The count attributes (junit-10.xsd allows `skipped` on <testsuite>, not on <testsuites>)."""
    out = {"tests": str(len(records)),
           "failures": str(sum(r.outcome is Outcome.FAIL for r in records)),
           "errors": str(sum(r.outcome is Outcome.INFRA_ERROR for r in records))}
    if skipped:
        out["skipped"] = str(sum(r.outcome in SKIP_TYPES for r in records))
    out["time"] = f"{sum(r.duration for r in records):.3f}"
    return out


#: The outcomes whose message names the rule: the one broken (fail) or waived (known-issue).
_RULE_OUTCOMES = (Outcome.FAIL, Outcome.KNOWN_ISSUE)


def verdict_message(rec: TestRecord, limit: int = 500) -> str:
    """'fail [fsm.state-after-set]: [fsm.state-after-set] on sim0: ...': the outcome, the rule a
    failure broke (or a waiver names) and the message's first line, for a one-line field."""
    first = rec.message.splitlines()[0] if rec.message else ""
    first = first.removeprefix("Skipped: ").removeprefix(f"{rec.outcome.value}: ")
    head = rec.outcome.value + (f" [{rec.rule}]" if rec.rule and rec.outcome in _RULE_OUTCOMES else "")
    return _text(f"{head}: {first}" if first else head)[:limit]


def _testcase(parent: ET.Element, rec: TestRecord, rich: bool) -> None:
    case = ET.SubElement(parent, "testcase", classname=classname(rec.nodeid), name=_text(rec.test_id),
                         time=f"{rec.duration:.3f}")
    if rich:
        props = ET.SubElement(case, "properties")
        for name, value in [("vc.outcome", rec.outcome.value), *((n, v) for n, v in rec.properties()
                                                               if n != "vc.outcome")]:
            ET.SubElement(props, "property", name=name, value=_text(value))
    if rec.outcome is Outcome.FAIL:
        tag = "failure"
    elif rec.outcome is Outcome.INFRA_ERROR:
        tag = "error"
    elif rec.outcome in SKIP_TYPES:
        tag = "skipped"
    else:
        return
    el = ET.SubElement(case, tag, type=rec.outcome.value, message=verdict_message(rec))
    el.text = _text(rec.message)


def build(suites: list[SuiteInput], name: str = "vfio-conform", rich: bool = False) -> ET.ElementTree:
    """The JUnit tree; `rich` adds per-test <properties> (outside junit-10.xsd)."""
    root = ET.Element("testsuites", name=name, **_counts([r for s in suites for r in s.records],
                                                         skipped=False))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    for suite in suites:
        el = ET.SubElement(root, "testsuite", name=suite.profile, timestamp=stamp,
                           hostname=suite.host, **_counts(suite.records))
        props = ET.SubElement(el, "properties")
        for pname, value in suite_properties(suite):
            ET.SubElement(props, "property", name=pname, value=_text(value))
        for rec in suite.records:
            _testcase(el, rec, rich)
    return ET.ElementTree(root)


def render(suites: list[SuiteInput], rich: bool = False) -> bytes:
    """The JUnit file's bytes (UTF-8, with the XML declaration)."""
    tree = build(suites, rich=rich)
    ET.indent(tree)
    return ET.tostring(tree.getroot(), encoding="utf-8", xml_declaration=True) + b"\n"


def write(path: str | Path, suites: list[SuiteInput], rich: bool = False) -> Path:
    """Write the XML through the shared output writer (in place for a device or FIFO, else atomically)."""
    return write_bytes(path, render(suites, rich), "JUnit XML")
