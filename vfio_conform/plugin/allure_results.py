"""Allure 2 results from the run's TestRecords, written once at the end of the session (controller).

One `<uuid>-result.json` per test (the decisive record, as JUnit), nothing per fixture: no
containers, no work while tests run. Beside them `environment.properties` (what ran where),
`categories.json` (driver findings apart from infrastructure problems) and `executor.json` (this
harness session). Outcomes map to Allure statuses: pass -> passed, fail -> failed, infra-error ->
broken, known-issue / not-supported / gated / skipped -> skipped with a message that starts with
the outcome (the categories tell them apart); the outcome itself is the `outcome` label.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
import uuid
from pathlib import Path

from .. import __version__
from ..outfile import OutputError, write_text
from ..results import Outcome, TestRecord
from ..results.environment import Environment
from .junit import classname

#: Allure categories: infrastructure problems apart from product defects (driver findings). Allure
#: matches categories on status and message only; a skipped result's message starts with its outcome.
CATEGORIES = [
    {"name": "Spec violations (driver)", "matchedStatuses": ["failed", "broken"],
     "messageRegex": "(?s).*(SpecViolation|UapiError|\\[[a-z]+\\.[a-z-]+\\]).*"},
    {"name": "Infrastructure errors (harness, lab, host)", "matchedStatuses": ["broken"]},
    {"name": "Known issues (waived in profile)", "matchedStatuses": ["skipped"],
     "messageRegex": f"(?s){Outcome.KNOWN_ISSUE.value}: .*"},
    {"name": "Not supported by the device", "matchedStatuses": ["skipped"],
     "messageRegex": f"(?s){Outcome.NOT_SUPPORTED.value}: .*"},
    {"name": "Gated hazards (not run on this kernel)", "matchedStatuses": ["skipped"],
     "messageRegex": f"(?s){Outcome.GATED.value}: .*"},
]

STATUS = {Outcome.PASS: "passed", Outcome.FAIL: "failed", Outcome.INFRA_ERROR: "broken",
          Outcome.KNOWN_ISSUE: "skipped", Outcome.NOT_SUPPORTED: "skipped", Outcome.GATED: "skipped",
          Outcome.SKIPPED: "skipped"}


@dataclasses.dataclass
class ProfileRun:
    """One profile's part of the session: what ran it and one record per test."""

    name: str
    records: list[TestRecord]
    backend: str = ""
    devices: tuple[str, ...] = ()
    driver: str = ""
    flags: int = 0
    environment: Environment | None = None
    run_id: int | None = None
    waivers: tuple = ()          # the profile's KnownIssues (each test links those naming it)


@dataclasses.dataclass
class AllureRun:
    """The session: its profiles, and per test id the texts the records leave out."""

    session: str
    kernel: str
    host: str
    profiles: list[ProfileRun]
    traces: dict[str, str] = dataclasses.field(default_factory=dict)    # nodeid -> failure text
    outputs: dict[str, str] = dataclasses.field(default_factory=dict)   # nodeid -> captured stdout


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _status_message(rec: TestRecord) -> str:
    """The message Allure shows (and its categories match): a skip starts with its outcome."""
    if rec.outcome is Outcome.KNOWN_ISSUE:
        return (f"{rec.outcome.value}: known issue, waived by known_issues[{rec.waiver_index}] "
                f"({rec.link}): {rec.waiver_reason}")
    text = rec.message
    if STATUS[rec.outcome] != "skipped":
        return text
    text = text.removeprefix("Skipped: ").removeprefix(f"{rec.outcome.value}: ")
    return f"{rec.outcome.value}: {text}"


def _labels(rec: TestRecord, prof: ProfileRun, host: str) -> list[dict]:
    module = classname(rec.nodeid)
    parts = module.split(".")
    labels = [("parentSuite", prof.name), ("profile", prof.name)]
    if prof.driver:
        labels.append(("driver", prof.driver))
    labels.append(("suite", parts[-2] if len(parts) > 1 else module))
    if len(parts) > 1:
        labels.append(("subSuite", parts[-1]))
    if rec.arc_from:
        arc = f"{rec.arc_from}->{rec.arc_to}"
        labels += [("tag", arc), ("arc", arc)]
    labels += [("checks", rule) for rule in rec.rules]
    labels.append(("outcome", rec.outcome.value))
    if rec.outcome in (Outcome.FAIL, Outcome.KNOWN_ISSUE) and rec.rule:
        labels.append(("rule", rec.rule))
    labels += [("should_not_met", rule) for rule in rec.should]
    if rec.arc_from:
        labels += [("arc_from", rec.arc_from), ("arc_to", rec.arc_to)]
    if rec.waiver_index is not None:
        labels.append(("waiver", f"known_issues[{rec.waiver_index}]"))
    if rec.hazard:
        labels.append(("hazard", rec.hazard))
    labels += [("host", host), ("thread", prof.name), ("framework", "vfio-conform"),
               ("language", "cpython3"), ("package", module)]
    return [{"name": n, "value": v} for n, v in labels]


def result(rec: TestRecord, prof: ProfileRun, run: AllureRun, now: float) -> dict:
    """One test's Allure result (without attachments)."""
    module = classname(rec.nodeid)
    function = rec.test_id.split("[", 1)[0]
    full_name = f"{module}#{function}"
    stop = rec.finished or now
    devices = ",".join(rec.devices or prof.devices)
    params = [{"name": "profile", "value": prof.name}]
    if rec.arc_from:
        params.append({"name": "arc", "value": f"{rec.arc_from}->{rec.arc_to}"})
    params += [{"name": "devices", "value": devices, "excluded": True},
               {"name": "driver", "value": prof.driver, "excluded": True},
               {"name": "kernel", "value": run.kernel, "excluded": True}]
    out = {
        "uuid": str(uuid.uuid4()),
        "historyId": _md5(f"{prof.name}\0{rec.test_key or rec.test_id}"),
        "testCaseId": _md5(f"{full_name}\0{rec.test_key or rec.test_id}"),
        "name": rec.test_id, "fullName": full_name,
        "status": STATUS[rec.outcome],
        "start": int((stop - rec.duration) * 1000), "stop": int(stop * 1000),
        "labels": _labels(rec, prof, run.host), "parameters": params,
        "links": [{"type": "issue", "url": k.link, "name": f"{k.rule}: {k.reason}"}
                  for k in prof.waivers if k.matches(rec.test_id)],
        "titlePath": rec.nodeid.split("::", 1)[0].split("/"),
    }
    message = _status_message(rec)
    trace = run.traces.get(rec.nodeid) or (rec.message if rec.outcome is Outcome.KNOWN_ISSUE else "")
    if message or trace:
        out["statusDetails"] = {"message": message, "trace": trace}
    return out


def environment_properties(run: AllureRun) -> str:
    """What ran where: the harness, the kernel, and each profile's captured environment."""
    lines = [f"harness.version={__version__}", f"kernel.release={run.kernel}", f"session={run.session}"]
    for prof in run.profiles:
        lines += [f"profile.{prof.name}.backend={prof.backend}",
                  f"profile.{prof.name}.devices={','.join(prof.devices)}",
                  f"profile.{prof.name}.driver={prof.driver}",
                  f"profile.{prof.name}.flags={int(prof.flags)}"]
        for key, value in prof.environment.properties() if prof.environment is not None else ():
            if key not in ("harness.version", "devices"):
                lines.append(f"profile.{prof.name}.{key}={_property_value(value)}")
    return "\n".join(lines) + "\n"


def _property_value(value: str) -> str:
    """One line of a Java properties file (the lspci text is several lines)."""
    return " | ".join(line.strip() for line in value.splitlines() if line.strip()).replace("\\", "\\\\")


def executor(run: AllureRun) -> dict:
    ids = {p.name: p.run_id for p in run.profiles if p.run_id is not None}
    runs = ", ".join(f"{n} #{i}" for n, i in ids.items())
    return {"name": "vfio-conform", "type": "vfio-conform",
            "buildName": f"session {run.session}" + (f" (runs {runs})" if runs else ""),
            "buildOrder": min(ids.values()) if ids else None,
            "reportName": f"vfio-conform {__version__} on {run.host}"}


def write(out: str | Path, run: AllureRun) -> int:
    """The results directory `out` for `run` (one result file per record); returns the count."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError("Allure results", out, exc.strerror or str(exc)) from None

    def put(name: str, text: str) -> None:
        write_text(out / name, text, "Allure results")
    put("environment.properties", environment_properties(run))
    put("categories.json", json.dumps(CATEGORIES, indent=2))
    put("executor.json", json.dumps(executor(run), indent=2))
    now, count = time.time(), 0
    for prof in run.profiles:
        for rec in prof.records:
            data = result(rec, prof, run, now)
            stdout = run.outputs.get(rec.nodeid)
            if stdout:
                source = f"{uuid.uuid4()}-attachment.txt"
                put(source, stdout)
                data["attachments"] = [{"name": "stdout", "source": source, "type": "text/plain"}]
            put(f"{data['uuid']}-result.json", json.dumps(data))
            count += 1
    return count
