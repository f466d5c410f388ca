"""Allure results from the run's TestRecords, in the Allure Python library's own model and file
writer (allure-python-commons, which allure-pytest is built on): no hand-built JSON.

Per test: one `<uuid>-result.json` from its decisive record (as JUnit), written by the process that
ran the test as soon as it ends (plugin/allure_listener.py), so a killed run keeps what it finished;
nothing per fixture (no containers). Beside them, written when the run starts: `environment.properties`
(what ran where), `categories.json` (Allure 2: one category per rule, matched on the message, which
starts with `[rule-id]` for every failure), `executor.json` (this harness session) and
`allurerc.json` (Allure 3, which reads no categories.json: the same categories as label matchers,
and the tree grouped by profile). Everything here is pure (records in, model objects or text out)
except `write_result` and `write_run_files`, one call each.

Outcomes map to Allure statuses: pass -> passed, fail -> failed, infra-error -> broken,
known-issue / not-supported / gated / skipped -> skipped with a message that starts with the outcome
(the categories tell them apart); the outcome itself is the `outcome` label. Severity comes from the
level of the rules the test checks: critical when one of them (or the rule it broke) is a `must`,
minor when all are `should`, normal when it names no rule.

PYTEST_DONT_REWRITE: library code, no test assertions (pytest would rewrite it on every import
as part of the plugin's package).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import random
import time
import uuid
from pathlib import Path
from typing import Any

from allure_commons.logger import AllureFileLogger
from allure_commons.model2 import (Attachment, Label, Link, Parameter, StatusDetails, TestResult,
                                   TestStepResult)

from .. import __version__
from ..base.outfile import OutputError, write_text
from ..base.verdicts import ALLURE_STATUS
from ..device.lastop import INTERRUPTED, describe_operation
from ..base.errors import errno_name
from ..model.spec import MUST, RULES
from ..results import Outcome, TestRecord
from ..results.environment import Environment
from .junit import classname

STATUS = ALLURE_STATUS

#: The categories after the one per rule: infrastructure problems apart from driver findings, and
#: the kinds of skip (their messages start with the outcome). (name, status, outcome or None)
OUTCOME_CATEGORIES = [
    ("Infrastructure errors (harness, lab, host)", "broken", None),
    ("Known issues (waived in profile)", "skipped", Outcome.KNOWN_ISSUE),
    ("Not supported by the device", "skipped", Outcome.NOT_SUPPORTED),
    ("Gated hazards (not run on this kernel)", "skipped", Outcome.GATED),
]
#: Severity per rule level (Allure's severity label).
SEVERITY = {MUST: "critical", "should": "minor", "": "normal"}
#: How many device operations of a failing test become its steps (the last ones).
MAX_STEPS = 100
#: The outcomes whose results show the test's device operations as steps.
STEPS_FOR = frozenset({Outcome.FAIL, Outcome.INFRA_ERROR})


def _rule_regex(rule_id: str) -> str:
    return rule_id.replace(".", "\\.")


def categories() -> list[dict]:
    """categories.json (Allure 2): one category per rule of the catalogue, matching a failure whose
    message starts with `[rule-id]`, then the outcome categories. Allure 2 matches the whole message
    (Java regex), so a failure is in exactly one rule category."""
    out = [{"name": rule.id, "matchedStatuses": ["failed"],
            "messageRegex": f"(?s)\\[{_rule_regex(rule.id)}\\].*"} for rule in RULES.values()]
    for name, status, outcome in OUTCOME_CATEGORIES:
        cat = {"name": name, "matchedStatuses": [status]}
        if outcome is not None:
            cat["messageRegex"] = f"(?s){outcome.value}: .*"
        out.append(cat)
    return out


def allure3_config(run: "AllureRun") -> dict:
    """allurerc.json (Allure 3 reads its categories from its configuration, first match wins): one
    category per rule on the `rule` label of failed results, the outcome categories on the `outcome`
    label, and the report tree grouped by profile, then suite area and module."""
    cats = [{"name": rule.id, "matchers": {"statuses": ["failed"],
                                           "labels": {"rule": f"^{_rule_regex(rule.id)}$"}}}
            for rule in RULES.values()]
    for name, status, outcome in OUTCOME_CATEGORIES:
        matcher: dict = {"statuses": [status]}
        if outcome is not None:
            matcher["labels"] = {"outcome": f"^{outcome.value}$"}
        cats.append({"name": name, "matchers": matcher})
    return {"name": f"vfio-conform {__version__} on {run.host}", "categories": cats,
            "plugins": {"awesome": {"options": {"groupBy": ["parentSuite", "suite", "subSuite"]}}}}


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
    """The session: its host (the store's --host) and profiles."""

    session: str
    kernel: str
    host: str
    profiles: list[ProfileRun]


@dataclasses.dataclass
class TestExtras:
    """What a test's record leaves out, gathered by the process that ran it."""

    __test__ = False

    description: str = ""       # the test function's docstring
    trace: str = ""             # the failure text (Allure's trace)
    stdout: str = ""            # captured stdout (an attachment)
    kernel_log: str = ""        # the kernel-log excerpt of a warning (an attachment)
    #: the device operations the test made, as lastop's trail: ((device, what, start), errno)
    operations: tuple = ()
    unfinished: tuple | None = None     # the operation still in flight when the test ended, if any
    truncated: bool = False     # earlier operations were not kept
    clock: float = 0.0          # time.time() - time.monotonic() while the test ran
    user: TestResult | None = None      # what allure.step/attach/dynamic added while it ran


#: A generator of its own for the results' names (Hypothesis seeds the module's shared one inside
#: its tests), seeded from the system's entropy in each process.
_RANDOM = random.Random()


def new_uuid() -> str:
    """A random (version 4) UUID's text: a result's name, unique, with no security property."""
    text = f"{(_RANDOM.getrandbits(128) & _UUID4_CLEAR) | _UUID4_SET:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


#: The version (4) and variant (RFC 4122) bits of a random UUID.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


try:
    from _md5 import md5 as _new_md5        # CPython's own MD5: no OpenSSL lookup at each call
except ImportError:                         # pragma: no cover - a Python built without it
    _new_md5 = functools.partial(hashlib.md5, usedforsecurity=False)


def status_message(rec: TestRecord) -> str:
    """The message Allure shows (and its categories match): a failure starts with `[rule]`, a skip
    with its outcome."""
    if rec.outcome is Outcome.KNOWN_ISSUE:
        return (f"{rec.outcome.value}: known issue, waived by known_issues[{rec.waiver_index}] "
                f"({rec.link}): {rec.waiver_reason}")
    text = rec.message
    if rec.outcome is Outcome.FAIL:
        return text if not rec.rule or text.startswith(f"[{rec.rule}]") else f"[{rec.rule}] {text}"
    if STATUS[rec.outcome] != "skipped":
        return text
    text = text.removeprefix("Skipped: ").removeprefix(f"{rec.outcome.value}: ")
    return f"{rec.outcome.value}: {text}"


def severity(rec: TestRecord) -> str:
    """critical / minor / normal from the level of the rules the test broke or checks."""
    return _severity(rec.rule, tuple(rec.rules))


@functools.lru_cache(maxsize=1024)
def _severity(rule: str, rules: tuple[str, ...]) -> str:
    levels = {RULES[r].level for r in (rule, *rules) if r in RULES}
    return SEVERITY[MUST if MUST in levels else "should" if levels else ""]


def _stories(rec: TestRecord) -> list[str]:
    """The rules a test is filed under: the one it broke (or a waiver names), else all it checks."""
    if rec.outcome in (Outcome.FAIL, Outcome.KNOWN_ISSUE) and rec.rule:
        return [rec.rule]
    return list(rec.rules) or ["(no rule)"]


#: Labels and parameters take the same few values over a whole run: one model object per value,
#: built once and shared by the results that carry it (nothing changes a result's labels or
#: parameters once it is built), and the object's plain form kept beside it for the writer, by the
#: object's id (the object stays alive in the cache, so its id names no other object).
_SHARED: dict[tuple, Label | Parameter] = {}     # (name, value) a label, (name, value, excluded) a parameter
_PLAIN_OF: dict[int, dict] = {}
_JSON_OF: dict[int, str] = {}
#: A bound on the shared objects (a run has a few hundred); past it the cache starts again.
_SHARED_MAX = 20000


def _share(key: tuple, obj):
    """`obj` as the shared object of `key` (with its plain form)."""
    if len(_SHARED) >= _SHARED_MAX:
        _SHARED.clear()
        _PLAIN_OF.clear()
        _JSON_OF.clear()
        _verdict_labels.cache_clear()
        _arc_labels.cache_clear()
        _family.cache_clear()
        _test_labels.cache_clear()
    _SHARED[key] = obj
    plain = _PLAIN_OF[id(obj)] = {k: v for k, v in vars(obj).items() if v or v is False}
    _JSON_OF[id(obj)] = _ENCODER.encode(plain)
    return obj


def _label(pair: tuple[str, str]) -> Label:
    """The shared Label of (name, value)."""
    return _SHARED.get(pair) or _share(pair, Label(name=pair[0], value=pair[1]))  # type: ignore[return-value]


def _parameter(name: str, value: str, excluded: bool | None = None) -> Parameter:
    key = (name, value, excluded)
    return _SHARED.get(key) or _share(key, Parameter(name=name, value=value,  # type: ignore[return-value]
                                                     excluded=excluded))


@functools.lru_cache(maxsize=1024)
def _module_parts(module_path: str) -> tuple[str, tuple[str, ...], str, tuple[str, ...]]:
    """(module, its dotted parts, its area, its file's path parts) of a node id's file part."""
    module = classname(module_path)
    parts = tuple(module.split("."))
    return module, parts, parts[-2] if len(parts) > 1 else module, tuple(module_path.removesuffix(".py").split("/"))


def _fixed_labels(profile: str, driver: str, module_path: str,
                  host: str) -> tuple[tuple[Label, ...], tuple[Label, ...]]:
    """The labels every test of a module in a profile carries: those before its own, those after
    (`_family` keeps them)."""
    module, parts, area, _ = _module_parts(module_path)
    head = [("parentSuite", profile), ("profile", profile)]
    if driver:
        head.append(("driver", driver))
    head.append(("suite", area))
    if len(parts) > 1:
        head.append(("subSuite", parts[-1]))
    head += [("epic", area), ("feature", parts[-1])]
    tail = [("host", host), ("thread", profile), ("framework", "vfio-conform"), ("language", "cpython3"),
            ("package", module)]
    return tuple(map(_label, head)), tuple(map(_label, tail))


@functools.lru_cache(maxsize=8192)
def _test_labels(family: "_Family", outcome: Outcome, rule: str, rules: tuple[str, ...],
                 should: tuple[str, ...], waiver_index: int | None, hazard: str, arc_from: str,
                 arc_to: str) -> tuple[Label, ...]:
    """A test's labels: its function's and the host's, what it checks and how it ended (shared per
    combination), and its arc's."""
    own = _verdict_labels(outcome, rule, rules, should, waiver_index, hazard)
    arc = _arc_labels(arc_from, arc_to) if arc_from else ()
    return (*family.head_labels, *own, *arc, *family.tail_labels)


@functools.lru_cache(maxsize=4096)
def _verdict_labels(outcome: Outcome, rule: str, rules: tuple[str, ...], should: tuple[str, ...],
                    waiver_index: int | None, hazard: str) -> tuple[Label, ...]:
    """The rules a test is filed under and checks, its severity, outcome, and what waived or gated it."""
    rec = TestRecord("", "", outcome, 0.0, rule=rule, rules=rules)
    labels = [*(("story", s) for s in _stories(rec)), ("severity", severity(rec))]
    labels += [("checks", r) for r in rules]
    labels.append(("outcome", outcome.value))
    if outcome in (Outcome.FAIL, Outcome.KNOWN_ISSUE) and rule:
        labels.append(("rule", rule))
    labels += [("should_not_met", r) for r in should]
    if waiver_index is not None:
        labels.append(("waiver", f"known_issues[{waiver_index}]"))
    if hazard:
        labels.append(("hazard", hazard))
    return tuple(map(_label, labels))


@functools.lru_cache(maxsize=4096)
def _arc_labels(arc_from: str, arc_to: str) -> tuple[Label, ...]:
    """An arc test's arc: as a tag (Allure's filter), and as the arc and its two ends."""
    arc = f"{arc_from}->{arc_to}"
    return tuple(map(_label, (("tag", arc), ("arc", arc), ("arc_from", arc_from), ("arc_to", arc_to))))


#: Labels that say what a test is and where it ran: a suite's allure.dynamic adds to them, never replaces.
_OWN_LABELS = frozenset({"parentSuite", "profile", "outcome", "rule", "checks", "host", "framework"})


def _merge_labels(ours: list[Label], theirs: list[Label]) -> list[Label]:
    """Our labels with the ones a test set through allure.dynamic (its severity, feature, ... win)."""
    if not theirs:
        return ours
    replaced = {label.name for label in theirs} - _OWN_LABELS
    return [label for label in ours if label.name not in replaced] + list(theirs)


def operation_steps(extras: TestExtras) -> list[TestStepResult]:
    """The device operations of a test as Allure steps: each with its errno, the one that never
    returned (a timeout) broken."""
    steps = []
    if extras.truncated:
        steps.append(TestStepResult(name=f"(only the last {len(extras.operations)} device operations "
                                         "are shown)", status="passed"))
    clock = extras.clock
    for (device, what, started), code in extras.operations:
        name = f"{describe_operation(what)} on {device}"
        if code == INTERRUPTED:
            name += ": interrupted by the time limit, never returned"
        elif code:
            name += f" -> {errno_name(code)}"
        at = int((started + clock) * 1000)
        steps.append(TestStepResult(name=name, status="broken" if code == INTERRUPTED else "passed",
                                    start=at, stop=at))
    if extras.unfinished is not None:
        device, what, started = extras.unfinished
        steps.append(TestStepResult(name=f"{describe_operation(what)} on {device}: never returned",
                                    status="broken", start=int((started + clock) * 1000)))
    return steps


def _fixed_parameters(profile: str, host: str, devices: str, driver: str,
                      kernel: str) -> tuple[tuple[Parameter, ...], tuple[Parameter, ...]]:
    """The parameters of every test of a profile on its devices: those before an arc's, those after
    (`_family` keeps them)."""
    return ((_parameter("profile", profile), _parameter("host", host)),
            (_parameter("devices", devices, True), _parameter("driver", driver, True),
             _parameter("kernel", kernel, True)))


@dataclasses.dataclass(frozen=True, eq=False)
class _Family:
    """What every test of one function in one profile on one host shares (made once per run and
    function; hashed by identity)."""

    full_name: str
    title_path: tuple[str, ...]
    head_labels: tuple[Label, ...]
    tail_labels: tuple[Label, ...]
    head_parameters: tuple[Parameter, ...]
    tail_parameters: tuple[Parameter, ...]
    history: Any        # an MD5 fed with "host\0profile\0": a test's historyId adds its key
    case: Any           # an MD5 fed with "fullName\0": a test's testCaseId adds its key


@functools.lru_cache(maxsize=4096)
def _family(profile: str, driver: str, host: str, kernel: str, devices: tuple[str, ...],
            module_path: str, function: str) -> _Family:
    module, _, _, path = _module_parts(module_path)
    full_name = f"{module}#{function}"
    head, tail = _fixed_labels(profile, driver, module_path, host)
    phead, ptail = _fixed_parameters(profile, host, ",".join(devices), driver, kernel)
    return _Family(full_name, (profile, *path), head, tail, phead, ptail,
                   _new_md5(f"{host}\0{profile}\0".encode()), _new_md5(f"{full_name}\0".encode()))


#: Read only: what `result` takes when a test brought no extras, or allure.* added nothing.
_NO_EXTRAS = TestExtras()
_NO_USER = TestResult()


def result(rec: TestRecord, prof: ProfileRun, run: AllureRun, extras: TestExtras | None = None,
           now: float | None = None) -> TestResult:
    """One test's Allure result (attachments of its own are added by `attachments`)."""
    extras = extras or _NO_EXTRAS
    user = extras.user or _NO_USER
    family = _family(prof.name, prof.driver, run.host, run.kernel, rec.devices or prof.devices,
                     rec.nodeid.partition("::")[0], rec.test_id.partition("[")[0])
    stop = rec.finished or (now if now is not None else time.time())
    key = (rec.test_key or rec.test_id).encode()
    history, case = family.history.copy(), family.case.copy()
    history.update(key)
    case.update(key)
    params = ([*family.head_parameters, _parameter("arc", f"{rec.arc_from}->{rec.arc_to}"),
               *family.tail_parameters] if rec.arc_from else [*family.head_parameters, *family.tail_parameters])
    links = [Link(type="issue", url=k.link, name=f"{k.rule}: {k.reason}")
             for k in prof.waivers if k.matches(rec.test_id)]
    labels = _test_labels(family, rec.outcome, rec.rule, rec.rules, rec.should, rec.waiver_index,
                          rec.hazard, rec.arc_from, rec.arc_to)
    out = TestResult(
        uuid=new_uuid(), historyId=history.hexdigest(), testCaseId=case.hexdigest(),
        name=user.name or rec.test_id, fullName=family.full_name,
        status=STATUS[rec.outcome], stage="finished",
        description=user.description or extras.description or None,
        descriptionHtml=user.descriptionHtml,
        start=int((stop - rec.duration) * 1000), stop=int(stop * 1000),
        labels=_merge_labels(list(labels), user.labels),
        parameters=params + [p for p in user.parameters if p.name not in {q.name for q in params}]
        if user.parameters else params,
        links=links + [link for link in user.links if link.url not in {q.url for q in links}] if user.links else links,
        titlePath=list(family.title_path),
        steps=list(user.steps), attachments=list(user.attachments))
    if rec.outcome in STEPS_FOR:
        out.steps += operation_steps(extras)
    message = status_message(rec)
    trace = extras.trace or (rec.message if rec.outcome is Outcome.KNOWN_ISSUE else "")
    if message or trace:
        out.statusDetails = StatusDetails(message=message or None, trace=trace or None)
    return out


def attachments(extras: TestExtras) -> list[tuple[Attachment, bytes]]:
    """The test's own attachments (captured stdout, the kernel-log excerpt) and their bytes."""
    out = []
    for name, text in (("stdout", extras.stdout), ("kernel log", extras.kernel_log)):
        if text:
            out.append((Attachment(name=name, source=f"{new_uuid()}-attachment.txt", type="text/plain"),
                        text.encode()))
    return out


#: The lists whose members are mostly shared objects (their JSON encoded once).
_SHARED_LIST_NAMES = ("labels", "parameters")
_SHARED_LISTS = frozenset(_SHARED_LIST_NAMES)


def _plain(value, leave_out: frozenset[str] = frozenset()) -> dict:
    """One level of attr.asdict(value, filter=<empty values left out>) as allure-python-commons'
    writer calls it, for an instance of the model's plain attrs classes, without the attributes
    `leave_out` names (a shared label or parameter's from the cache). The model objects inside it
    (a status, steps, links, ...) are made plain by the encoder as it reaches them (`_nested`)."""
    known = _PLAIN_OF.get(id(value))
    if known is not None:
        return known
    return {k: v for k, v in vars(value).items() if (v or v is False) and k not in leave_out}


def _nested(value) -> dict:
    """The encoder's hook for what it cannot encode itself: a model object inside a result."""
    if hasattr(type(value), "__attrs_attrs__"):
        return _plain(value)
    raise TypeError(f"an Allure result holds a {type(value).__name__}, which is not JSON")


def _json(value) -> str:
    """One list member's JSON (a shared label or parameter's from the cache)."""
    known = _JSON_OF.get(id(value))
    if known is not None:
        return known
    return _ENCODER.encode(value)


def _join(members: list) -> str:
    """The members' JSON texts joined: when all are shared objects, straight from the cache."""
    try:
        return ", ".join(map(_JSON_OF.__getitem__, map(id, members)))
    except KeyError:        # one a test added through allure.dynamic
        return ", ".join([_json(x) for x in members])


def encode(item) -> str:
    """The JSON text allure-python-commons' writer makes of a model object (json.dumps of
    attr.asdict with empty values left out; the same value, keys in another order): its labels and
    parameters joined from each one's JSON, encoded once per shared object."""
    text = _ENCODER.encode(_plain(item, _SHARED_LISTS))
    lists = [f'"{name}": [{_join(members)}]'
             for name in _SHARED_LIST_NAMES if (members := getattr(item, name, None))]
    if not lists:
        return text
    return f"{text[:-1]}{', ' if len(text) > 2 else ''}{', '.join(lists)}}}"


#: json.dumps' C encoder, set up once (the model has no cycles to check for); the model objects
#: inside a result go through `_nested`.
_ENCODER = json.JSONEncoder(ensure_ascii=False, check_circular=False, default=_nested)


class ResultsWriter(AllureFileLogger):
    """allure-python-commons' file writer (the same file names and content), writing each result in
    one call: its `json.dump` streams through Python's pure-Python encoder (ten times the CPU of
    `json.dumps`), and its write beside and rename into place costs a second metadata operation per
    test, the most expensive part on a busy file system. A result is written once, to a new name
    (O_EXCL: nothing is replaced); a run killed while writing one can leave that one file
    incomplete, which both Allure command lines skip with a warning."""

    _dir_fd: int | None = None
    #: result files created, and the seconds their creation (open with O_CREAT) took
    created = 0
    create_seconds = 0.0

    def _report_item(self, item):
        body = memoryview(encode(item).encode())
        # named by the result's own uuid (allure-python-commons draws another one), created in the
        # results directory held open (one path component to look up, not the whole path)
        name = item.file_pattern.format(prefix=item.uuid or uuid.uuid4())
        try:
            if self._dir_fd is None:
                self._dir_fd = os.open(self._report_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            start = time.perf_counter()
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644, dir_fd=self._dir_fd)
            self.create_seconds += time.perf_counter() - start
            self.created += 1
            try:
                while body:
                    body = body[os.write(fd, body):]
            finally:
                os.close(fd)
        except OSError as exc:      # said with the file's whole path
            exc.filename = f"{self._report_dir}/{name}"
            raise

    def close(self) -> None:
        """Let go of the results directory (the next result opens it again)."""
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None


def write_result(logger: AllureFileLogger, res: TestResult,
                 files: list[tuple[Attachment, bytes]] = ()) -> None:
    """One result file (and its attachments) through allure-python-commons' file writer."""
    for attachment, body in files:
        logger.report_attached_data(body=body, file_name=attachment.source)
        res.attachments.append(attachment)
    logger.report_result(res)


def environment_properties(run: AllureRun) -> str:
    """What ran where: the harness, the kernel, and each profile's captured environment."""
    lines = [f"harness.version={__version__}", f"kernel.release={run.kernel}", f"session={run.session}",
             f"host={run.host}"]
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


def run_files(run: AllureRun) -> dict[str, str]:
    """The files beside the results: file name -> text."""
    return {"environment.properties": environment_properties(run),
            "categories.json": json.dumps(categories(), indent=2),
            "executor.json": json.dumps(executor(run), indent=2),
            "allurerc.json": json.dumps(allure3_config(run), indent=2)}


def write_run_files(out: str | Path, run: AllureRun, stop=None) -> None:
    """The run's files into the results directory `out` (each replaced whole); `stop()` true before
    a file: the rest are not written (a SIGTERM came)."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError("Allure results", out, exc.strerror or str(exc)) from None
    for name, text in run_files(run).items():
        if stop is not None and stop():
            return
        write_text(out / name, text, "Allure results")


def write(out: str | Path, run: AllureRun, extras: dict[str, TestExtras] | None = None) -> int:
    """The whole results directory for `run` from its records at once (run files and one result per
    record; extras by node id); returns the number of results."""
    write_run_files(out, run)
    logger = ResultsWriter(str(out))
    count, now = 0, time.time()
    try:
        for prof in run.profiles:
            for rec in prof.records:
                more = (extras or {}).get(rec.nodeid)
                write_result(logger, result(rec, prof, run, more, now), attachments(more) if more else [])
                count += 1
    finally:
        logger.close()
    return count
