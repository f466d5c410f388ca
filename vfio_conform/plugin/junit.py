"""JUnit XML from the run's TestRecords: one <testsuite> per profile, its environment as properties.

Written by the harness itself (not pytest's --junitxml, which puts every profile in one `pytest`
suite and reads testcase properties before the verdict exists). Mapping of outcomes:
fail -> <failure type="spec-violation">, infra-error -> <error type="infra-error">,
known-issue / not-supported / gated / skipped -> <skipped type="<outcome>">, pass -> nothing.
"""
from __future__ import annotations

import dataclasses
import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from ..outfile import open_output
from ..results import Outcome, TestRecord
from ..results import rootcause
from ..results.environment import Environment

#: XML 1.0 cannot hold most control characters (a device's bytes may end up in a message).
_BAD_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
SKIP_TYPES = (Outcome.KNOWN_ISSUE, Outcome.NOT_SUPPORTED, Outcome.GATED, Outcome.SKIPPED)


@dataclasses.dataclass
class SuiteInput:
    """One profile's part of a run: its name, run id, environment and one record per test."""

    profile: str
    records: list[TestRecord]
    environment: Environment | None = None
    run_id: int | None = None
    session: str = ""
    host: str = ""


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
    env = suite.environment
    if env is not None:
        def joined(field: str) -> str:
            return ",".join(dict.fromkeys(getattr(d, field) for d in env.devices))
        props += [("kernel", env.kernel_release), ("driver", joined("driver")),
                  ("srcversion", joined("srcversion")), ("firmware", env.firmware)]
        props += env.properties()
    return props


def _counts(records: list[TestRecord]) -> dict[str, str]:
    return {"tests": str(len(records)),
            "failures": str(sum(r.outcome is Outcome.FAIL for r in records)),
            "errors": str(sum(r.outcome is Outcome.INFRA_ERROR for r in records)),
            "skipped": str(sum(r.outcome in SKIP_TYPES for r in records)),
            "time": f"{sum(r.duration for r in records):.3f}"}


def _testcase(parent: ET.Element, rec: TestRecord) -> None:
    case = ET.SubElement(parent, "testcase", classname=classname(rec.nodeid), name=_text(rec.test_id),
                         time=f"{rec.duration:.3f}")
    props = ET.SubElement(case, "properties")
    for name, value in [("vc.outcome", rec.outcome.value), *((n, v) for n, v in rec.properties()
                                                           if n != "vc.outcome")]:
        ET.SubElement(props, "property", name=name, value=_text(value))
    first = _text(rec.message.splitlines()[0] if rec.message else rec.outcome.value)[:500]
    if rec.outcome is Outcome.FAIL:
        el = ET.SubElement(case, "failure", type="spec-violation", message=first)
    elif rec.outcome is Outcome.INFRA_ERROR:
        el = ET.SubElement(case, "error", type="infra-error", message=first)
    elif rec.outcome in SKIP_TYPES:
        el = ET.SubElement(case, "skipped", type=rec.outcome.value, message=first)
    else:
        return
    el.text = _text(rec.message)


def build(suites: list[SuiteInput], name: str = "vfio-conform") -> ET.ElementTree:
    root = ET.Element("testsuites", name=name, **_counts([r for s in suites for r in s.records]))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    for suite in suites:
        el = ET.SubElement(root, "testsuite", name=suite.profile, timestamp=stamp,
                           hostname=suite.host, **_counts(suite.records))
        props = ET.SubElement(el, "properties")
        for pname, value in suite_properties(suite):
            ET.SubElement(props, "property", name=pname, value=_text(value))
        for rec in suite.records:
            _testcase(el, rec)
    return ET.ElementTree(root)


def write(path: str | Path, suites: list[SuiteInput]) -> Path:
    """Write the XML through the shared output writer (in place for a device or FIFO, else atomically)."""
    tree = build(suites)
    ET.indent(tree)
    with open_output(path, "JUnit XML") as f:
        tree.write(f, encoding="utf-8", xml_declaration=True)
    return Path(path)
