"""Allure in the process that runs the tests: `allure.step`, `allure.attach` and `allure.dynamic`
inside suites and vendor verify hooks land on the running test, and each test's result is written
as soon as the test ends (allure_results builds it from the test's decisive record).

Registered (with --vc-allure) in every process that runs tests: each xdist worker, or the one
process without xdist. It is an allure-python-commons listener of its own, so allure-pytest's
pytest plugin is not needed (`vfio-conform run` passes `-p no:allure_pytest`): no per-fixture
containers, no work per fixture. While a test runs, the device operations it makes are kept
(device/lastop.py's trail, the last allure_results.MAX_STEPS); a failing test shows them as steps.

PYTEST_DONT_REWRITE: library code, no test assertions (pytest would rewrite it on every import
as part of the plugin's package).
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import time

import allure_commons
import pytest
from allure_commons.model2 import Label, Link, Parameter, StatusDetails, TestResult, TestStepResult
from allure_commons.reporter import AllureReporter
from allure_commons.utils import format_exception, format_traceback, now, represent, uuid4

from ..device import LAST_OPERATION
from ..device.lastop import pairs
from ..base.outfile import OutputError, write_text
from ..results.redact import redact_paths
from ..results import TestRecord
from ..outputs import allure_results
from . import classify
from .ci_outputs import decisive
from ..targets.items import item_param

#: The report section the kernel-log watch adds to a test with a kernel warning (plugin/kmsg.py).
KERNEL_LOG_SECTION = "Captured kernel log "


@dataclasses.dataclass(slots=True)
class _Running:
    """One test while it runs: what its reports bring, and the uuid of the result that allure.step /
    attach / dynamic fill in ('' until the test calls one of them: most never do)."""

    description: str
    clock: float        # time.time() - time.monotonic()
    started: float      # time.monotonic() when it began
    records: list[TestRecord] = dataclasses.field(default_factory=list)
    trace: str = ""
    stdout: str = ""
    kernel_log: str = ""
    uuid: str = ""


def profile_part(ctx, name: str, host: str) -> tuple[allure_results.ProfileRun, allure_results.AllureRun]:
    """A profile's part of the run (what its tests' results share) and a run of that profile on `host`."""
    target = ctx.targets.get(name)
    prof = target.profile if target is not None else None
    part = allure_results.ProfileRun(
        name, [], backend=prof.backend if prof else "",
        devices=tuple(target.device_ids) if target else (), driver=target.driver if target else "",
        flags=int(prof.flags) if prof else 0, waivers=tuple(prof.known_issues) if prof else ())
    return part, allure_results.AllureRun("", ctx.kernel_release, host, [part])


class AllureListener:
    """pytest plugin and allure-python-commons listener of one test process."""

    def __init__(self, ctx, out_dir: str, host: str):
        self.ctx, self.host = ctx, host
        self.logger = allure_results.ResultsWriter(out_dir)
        self.reporter = AllureReporter()
        self.running: dict[str, _Running] = {}
        self.profiles: dict[str, tuple[allure_results.ProfileRun, allure_results.AllureRun]] = {}
        self.docs: dict[object, str] = {}
        self.current: _Running | None = None
        #: the first result that could not be written (a full disk): no more are tried, and the
        #: session's end raises it, so the run ends incomplete (crashed) with one line, after the
        #: tests were run and their devices left safe, not from inside a test's protocol
        self.failed: OutputError | None = None
        #: only the listener joins allure-python-commons' plugin manager: its file writer stays
        #: private, so another writer there (allure-pytest with --alluredir) never gets this run's
        #: results, nor this one another's
        allure_commons.plugin_manager.register(self)

    def close(self) -> None:
        if allure_commons.plugin_manager.is_registered(self):
            allure_commons.plugin_manager.unregister(self)
        self.logger.close()

    def pytest_unconfigure(self, config) -> None:
        self.close()

    @pytest.hookimpl(trylast=True)          # after the JUnit XML and KTAP (a full disk says so there first)
    def pytest_sessionfinish(self, session) -> None:
        stats = session.config.getoption("vc_allure_stats", None)
        if stats:
            write_text(stats, json.dumps({"results": self.logger.created,
                                          "create_seconds": round(self.logger.create_seconds, 6)}) + "\n",
                       "--vc-allure-stats")
        if self.failed is not None:
            raise self.failed

    # -- pytest ------------------------------------------------------------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        if item_param(item, "profile") is None:
            return (yield)
        started = time.monotonic()
        test = _Running(self._doc(getattr(item, "function", None)), time.time() - started, started)
        self.running[item.nodeid] = self.current = test
        LAST_OPERATION.record(2 * allure_results.MAX_STEPS)     # each op, and the errno of one that failed
        try:
            return (yield)
        finally:
            trail = LAST_OPERATION.taken()
            unfinished = LAST_OPERATION.op if LAST_OPERATION.in_progress else None
            self.running.pop(item.nodeid, None)
            self.current = None
            user = None
            if test.uuid:           # allure.step/attach/dynamic were called: their result
                user = self.reporter.get_item(test.uuid)
                self.reporter.drop_test(test.uuid)
            if test.records and self.failed is None:
                try:
                    self._write(test, user, trail, unfinished)
                except OSError as exc:
                    self.failed = exc if isinstance(exc, OutputError) else OutputError(
                        "Allure results", exc.filename or self.logger._report_dir, exc.strerror or str(exc))

    def _doc(self, function) -> str:
        """The test function's docstring (once per function: its parametrized tests share it)."""
        try:
            return self.docs[function]
        except KeyError:
            doc = self.docs[function] = inspect.getdoc(function) or ""
            return doc
        except TypeError:       # not hashable
            return inspect.getdoc(function) or ""

    def pytest_runtest_logreport(self, report) -> None:
        test = self.running.get(report.nodeid)
        if test is None:
            return
        if report.user_properties:
            rec = classify.record_of(report)
            if rec is not None:
                test.records.append(rec)
        if report.failed:
            test.trace = "\n".join(filter(None, (test.trace, redact_paths(report.longreprtext))))
        if report.sections and (report.when == "teardown" or report.failed):
            # each phase's report holds the earlier ones' sections: the last one read has them all
            test.stdout = redact_paths(report.capstdout) or test.stdout
            log = "".join(text for name, text in report.sections if name.startswith(KERNEL_LOG_SECTION))
            test.kernel_log = log or test.kernel_log

    def _write(self, test: _Running, user: TestResult | None, trail, unfinished) -> None:
        rec = decisive(test.records)[0]
        operations: tuple = ()
        if trail and rec.outcome in allure_results.STEPS_FOR:       # steps only a failure shows
            operations = pairs(trail)
        extras = allure_results.TestExtras(
            description=test.description, trace=test.trace, stdout=test.stdout,
            kernel_log=test.kernel_log, operations=operations[-allure_results.MAX_STEPS:],
            unfinished=unfinished if unfinished is not None and unfinished[2] >= test.started else None,
            truncated=len(operations) > allure_results.MAX_STEPS or (
                trail is not None and trail.maxlen == len(trail)), clock=test.clock, user=user)
        prof, run = self._profile(rec.profile)
        allure_results.write_result(self.logger, allure_results.result(rec, prof, run, extras),
                                    allure_results.attachments(extras))

    def _profile(self, name: str) -> tuple[allure_results.ProfileRun, allure_results.AllureRun]:
        """The profile's part of the run and a run of that profile (made once per profile)."""
        if name not in self.profiles:
            self.profiles[name] = profile_part(self.ctx, name, self.host)
        return self.profiles[name]

    # -- allure-python-commons: what allure.step / attach / dynamic call ---------------------
    def _test(self) -> TestResult | None:
        """The running test's result for what allure.step/attach/dynamic add (made on the first)."""
        test = self.current
        if test is None:
            return None
        if not test.uuid:
            test.uuid = uuid4()
            self.reporter.schedule_test(test.uuid, TestResult(uuid=test.uuid))
        return self.reporter.get_test(None)

    @allure_commons.hookimpl
    def start_step(self, uuid, title, params):
        self._test()
        step = TestStepResult(name=title, start=now(),
                              parameters=[Parameter(name=k, value=v) for k, v in params.items()])
        self.reporter.start_step(None, uuid, step)

    @allure_commons.hookimpl
    def stop_step(self, uuid, exc_type, exc_val, exc_tb):
        status = "passed" if exc_val is None else "failed" if isinstance(exc_val, AssertionError) else "broken"
        details = (StatusDetails(message=format_exception(exc_type, exc_val), trace=format_traceback(exc_tb))
                   if exc_val is not None else None)
        self.reporter.stop_step(uuid, stop=now(), status=status, statusDetails=details)

    @allure_commons.hookimpl
    def attach_data(self, body, name, attachment_type, extension):
        if self._test() is not None:      # on the running step or test, the file through our writer
            file_name = self.reporter._attach(uuid4(), name=name, attachment_type=attachment_type,
                                              extension=extension)
            self.logger.report_attached_data(body=body, file_name=file_name)

    @allure_commons.hookimpl
    def attach_file(self, source, name, attachment_type, extension):
        if self._test() is not None:
            file_name = self.reporter._attach(uuid4(), name=name, attachment_type=attachment_type,
                                              extension=extension)
            self.logger.report_attached_file(source=source, file_name=file_name)

    @allure_commons.hookimpl
    def add_title(self, test_title):
        if (res := self._test()) is not None:
            res.name = test_title

    @allure_commons.hookimpl
    def add_description(self, test_description):
        if (res := self._test()) is not None:
            res.description = test_description

    @allure_commons.hookimpl
    def add_description_html(self, test_description_html):
        if (res := self._test()) is not None:
            res.descriptionHtml = test_description_html

    @allure_commons.hookimpl
    def add_label(self, label_type, labels):
        if (res := self._test()) is not None:
            res.labels += [Label(name=label_type, value=value) for value in labels]

    @allure_commons.hookimpl
    def add_link(self, url, link_type, name):
        if (res := self._test()) is not None and all(link.url != url for link in res.links):
            res.links.append(Link(type=link_type, url=url, name=name or url))

    @allure_commons.hookimpl
    def add_parameter(self, name, value, excluded, mode):
        if (res := self._test()) is None:
            return
        res.parameters = [p for p in res.parameters if p.name != name]
        res.parameters.append(Parameter(name=name, value=represent(value), excluded=excluded or None,
                                        mode=mode.value if mode else None))
