"""Hook implementations: configure, parametrize from the model, classify, record, time out."""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path

import pytest

from vfio_conform.suitelib.checks import drain_should_not_met, not_on_transport
from ..backends import registry as backend_registry
from ..base.constants import user_cache_dir
from ..base.errors import ConfigError
from ..base.interrupts import install_sigterm
from ..model.fsm import supported_states
from ..model.plan import plan
from ..results.outcomes import SKIP_MARK, not_supported, raise_marked, skip_outcome
from ..results import Outcome, StoreError, TestRecord
from ..uapi.enums import MigState
from . import classify, params
from .ci_outputs import CiOutputs, allure_wanted, check_outputs, run_host
from .context import CONTEXT_KEY, build_context, open_store
from ..targets.items import item_arc, item_key, item_param
from .heap import FrozenCollection
from .kmsg import KernelLogWatch
from .lifecycle import RunGuard, RunLifecycle
from .options import add_options
from .perf import PLUGIN_NAME as PERF_PLUGIN, PerfWatch
from .recorder import ResultRecorder
from ..targets.items import spec_ids
from ..targets.requirements import ARC_TARGETS, has_need, need_name
from .sanitizers import ServerLogWatch
from .selection import Selection
from .store_mirror import check_mirror, register as register_mirror
from .timeout import TestTimer, usable
from .watchdog import Watchdog
from ..targets.waivers import waiver_message
from .waivers import WaiverLedger
from .workers import GroupSuffix, WorkerWatch, stall_limit

#: Requested states of the transition matrix: every state, ERROR and the first invalid value.


def pytest_addoption(parser) -> None:
    add_options(parser)


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "vc_spec(*rule_ids): the spec rules a test checks (ids of "
                                       "vfio_conform/model/spec.py, checked at collection)")
    config.addinivalue_line("markers", "vc_requires(*flags): migration flags/features the test needs "
                                       "(absent: not-supported)")
    config.addinivalue_line("markers", f"{SKIP_MARK}(outcome, reason, hazard): a typed skip decided at "
                                       "collection (vfio_conform.results.outcomes.skip_mark)")
    params.register(config)
    try:
        ctx = build_context(config)
    except ConfigError as exc:
        raise pytest.UsageError(f"vfio-conform: {exc}") from None
    if ctx is None:
        return
    spill = config.getoption("vc_spill_dir", None)
    if spill is not None and not os.path.isdir(spill):
        raise pytest.UsageError(f"vfio-conform: --vc-spill-dir {spill!r} is not a directory")
    config.stash[CONTEXT_KEY] = ctx
    hypothesis_storage()
    quiet_cache(config)
    if ctx.inventory is not None:      # leases, binds and health checks of this process
        config.pluginmanager.register(ctx.inventory, "vfio-conform-inventory")
    if usable():
        timer = TestTimer()
        config.pluginmanager.register(timer, "vfio-conform-timer")
        if not config.option.collectonly:    # what SIGALRM cannot interrupt: a thread notices
            config.pluginmanager.register(Watchdog(config, ctx, timer), "vfio-conform-watchdog")
    if hasattr(config, "workerinput"):  # xdist's group suffix, where pytest lost xdist's own
        config.pluginmanager.register(GroupSuffix(), "vfio-conform-group-suffix")
    config.pluginmanager.register(KernelLogWatch(), "vfio-conform-kmsg")
    config.pluginmanager.register(ServerLogWatch(ctx.targets), "vfio-conform-sanitizers")
    config.pluginmanager.register(PerfWatch(), PERF_PLUGIN)
    if config.option.collectonly:      # listing tests runs nothing: no run is begun or judged
        return
    config.pluginmanager.register(FrozenCollection(), "vfio-conform-heap")
    if allure_wanted(config):
        _register_allure(config, ctx)
    if not hasattr(config, "workerinput"):
        try:
            check_outputs(config)           # before the store: nothing is written for a bad path
            if config.getoption("vc_store_mirror", None) and not config.getoption("vc_no_store"):
                from ..base.constants import STORE_NAME, reports_dir
                check_mirror(config.getoption("vc_store") or reports_dir() / STORE_NAME,
                             config.getoption("vc_store_mirror"))
            open_store(config, ctx)
        except (StoreError, ConfigError) as exc:
            raise pytest.UsageError(f"vfio-conform: {exc}") from None
        selection = Selection(ctx.targets)
        config.pluginmanager.register(selection, "vfio-conform-selection")
        lifecycle = RunLifecycle(ctx, selection)
        junit = config.getoption("vc_junit", None)
        lifecycle.crash_dir = str(Path(junit).parent) if junit else None
        config.pluginmanager.register(lifecycle, "vfio-conform-lifecycle")
        config.pluginmanager.register(RunGuard(lifecycle), "vfio-conform-run-guard")
        recorder = ResultRecorder(ctx, lifecycle)
        config.pluginmanager.register(recorder, "vfio-conform-recorder")
        stall = config.getoption("vc_stall_timeout")
        config.pluginmanager.register(WorkerWatch(ctx, recorder, lifecycle, stall_limit(ctx) if stall is None
                                                  else stall), "vfio-conform-workers")
        if ctx.store is not None:
            register_mirror(config, ctx.store, recorder)
        ci = CiOutputs(config, ctx, recorder)
        config.pluginmanager.register(ci, "vfio-conform-ci")
        config.pluginmanager.register(WaiverLedger(ctx), "vfio-conform-waivers")
        install_sigterm()
        ci.write_run_files()


def _register_allure(config, ctx) -> None:
    """Allure output needs allure-python-commons; the process that runs tests (an xdist worker, or
    the only process) gets the listener that writes each test's result as it ends."""
    try:
        import allure_commons  # noqa: F401
    except ImportError as exc:
        raise pytest.UsageError(f"vfio-conform: Allure output (--vc-allure) needs allure-pytest "
                                f"(allure-python-commons): {exc}") from None
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        from .allure_listener import AllureListener
        config.pluginmanager.register(AllureListener(ctx, allure_wanted(config), run_host(ctx)),
                                      "vfio-conform-allure")


#: Hypothesis' own variable for where it keeps its files (default: .hypothesis/ of the current directory).
HYPOTHESIS_STORAGE_ENV = "HYPOTHESIS_STORAGE_DIRECTORY"


def hypothesis_storage() -> None:
    """Hypothesis keeps caches in .hypothesis/ of the current directory (the suites use no example
    database); a run leaves nothing but reports/ there, so they go to the user's cache directory
    unless the user chose a place. The environment carries it to xdist's worker processes."""
    if os.environ.get(HYPOTHESIS_STORAGE_ENV):
        return
    where = str(user_cache_dir() / "hypothesis")
    os.environ[HYPOTHESIS_STORAGE_ENV] = where
    configuration = sys.modules.get("hypothesis.configuration")   # imported already: tell it too
    if configuration is not None and hasattr(configuration, "set_hypothesis_home_dir"):
        configuration.set_hypothesis_home_dir(where)


#: Options that read or write pytest's cache (then the user wants it, where pytest keeps it).
CACHE_OPTIONS = ("lf", "failedfirst", "newfirst", "stepwise", "stepwise_skip", "cacheshow", "cacheclear")


def quiet_cache(config) -> None:
    """A run leaves nothing but reports/ in the current directory: pytest's cache plugins, which
    write .pytest_cache/ at the end of every session, are dropped unless the configuration moves
    the cache elsewhere (the checkout's pyproject.toml: reports/.pytest_cache) or an option uses it."""
    if getattr(config, "cache", None) is None or config.getini("cache_dir") != ".pytest_cache":
        return
    if any(config.getoption(name, default=False) for name in CACHE_OPTIONS):
        return
    for name in ("lfplugin", "nfplugin"):
        plugin = config.pluginmanager.get_plugin(name)
        if plugin is not None:
            config.pluginmanager.unregister(plugin)


def _ctx(config):
    return config.stash.get(CONTEXT_KEY, None)


def pytest_report_header(config):
    ctx = _ctx(config)
    if ctx:
        return [f"vfio-conform: kernel {ctx.kernel_release}; " + "; ".join(
            f"{n} -> {', '.join(t.device_ids)} ({t.profile.backend})" for n, t in ctx.targets.items())]


def pytest_generate_tests(metafunc) -> None:
    ctx = _ctx(metafunc.config)
    names = metafunc.fixturenames
    if "profile" not in names:
        return
    if ctx is None:
        raise pytest.UsageError("the suites need a profile: vfio-conform run --profile NAME "
                                "(or pytest --vc-profile NAME)")
    if params.parametrize(metafunc, ctx.profiles):     # ("profile", "region") tests
        return
    if "arc" in names:
        values, ids = [], []
        for profile in ctx.profiles:
            for cur in supported_states(profile.flags):
                for target in ARC_TARGETS:
                    values.append((profile, plan(cur, target, profile.flags)))
                    ids.append(f"{profile.name}:{cur.name}->{MigState.label(target)}")
        metafunc.parametrize(("profile", "arc"), values, ids=ids)
    else:
        metafunc.parametrize("profile", ctx.profiles, ids=[p.name for p in ctx.profiles])


@pytest.hookimpl(tryfirst=True)     # before xdist's loadgroup reads the xdist_group marks
def pytest_collection_modifyitems(config, items) -> None:
    """Pin each profile's tests to one xdist worker: a device is exclusive."""
    if _ctx(config) is None:
        return
    counts: dict[str, int] = {}
    for item in items:
        profile = item_param(item, "profile")
        if profile is not None:
            group = profile.name       # with an inventory: one group per leasable device (or pair)
            if _ctx(config).inventory is not None:
                counts[profile.name] = counts.get(profile.name, -1) + 1
                group = _ctx(config).inventory.group(profile.name, counts[profile.name])
            item.add_marker(pytest.mark.xdist_group(group))
    params.gate_protocol(items)                   # v1/v2 suites on the matching profiles


def note_selection(session) -> None:
    """With a progress file (the lab's progress channel), list the selected tests first, one
    `# selected PROFILE<TAB>NODEID` line each (one write per line: atomic on a FIFO shared by several
    processes), so a host that loses the guest knows which tests never ran."""
    ctx = _ctx(session.config)
    if ctx is None or not ctx.progress_file or not session.items:
        return
    with open(ctx.progress_file, "a") as f:
        for item in session.items:
            profile = item_param(item, "profile")
            if profile is not None:
                f.write(f"# selected {profile.name}\t{item.nodeid}\n")
                f.flush()


@pytest.hookimpl(tryfirst=True)      # before any fixture of the test is set up
def pytest_runtest_setup(item) -> None:
    ctx = _ctx(item.config)
    profile = item_param(item, "profile")
    if ctx is None or profile is None:
        return
    raise_marked(item)
    drain_should_not_met()                  # findings of an earlier test are not this test's
    if ctx.progress_file:
        with open(ctx.progress_file, "a") as f:
            f.write(item.nodeid + "\n")
    for mark in item.iter_markers("vc_requires"):
        for need in mark.args:
            if not has_need(profile, need):
                not_supported(f"profile {profile.name} lacks {need_name(need)}")
    _gate_transport(item, profile)


def _gate_transport(item, profile) -> None:
    """not-supported (with the reason) when none of the test's rules applies to the transport."""
    reason = not_on_transport(spec_ids(item), backend_registry.get(profile.backend).transport)
    if reason:
        not_supported(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Build the test's one record; a violation of the rule a waiver names becomes a 'known issue'.

    Only a SpecViolation of the waiver's rule is waived: another rule failing in the same test, a
    plain assertion or an errno the test did not allow for stays a failure. The record travels on
    the report (see classify.attach) to the store, JUnit, Allure, the reports and the summary.
    """
    result = yield
    report = result.get_result()
    profile = item_param(item, "profile")
    ctx = _ctx(item.config)
    if profile is None or ctx is None:
        return
    outcome, rule, link, issue, hazard = None, "", "", None, ""
    should = drain_should_not_met() if report.when == "call" else []
    if report.failed:
        outcome, rule = classify.failure_outcome(call.excinfo, report.when)
        if outcome is Outcome.FAIL and not rule:
            # an errno or assertion the test did not attribute: a failure of a `must` rule it checks;
            # a test that checks only `should` rules has none to fail (classify.unattributed_should)
            rule, should_only = classify.unattributed_rule(spec_ids(item))
            if should_only:
                should = [classify.should_finding(rule, call.excinfo)]
                outcome = Outcome.PASS
                report.outcome, report.longrepr = "passed", None
        issue = profile.known_issue(_test_id(item), rule) if outcome is Outcome.FAIL and rule else None
        if issue:
            outcome, link = Outcome.KNOWN_ISSUE, issue.link
            report.outcome = "skipped"
            report.wasxfail = waiver_message(issue, str(call.excinfo.value))
    elif report.skipped and not hasattr(report, "wasxfail"):
        exc = call.excinfo.value if call.excinfo is not None else None
        outcome = skip_outcome(exc)
        hazard = getattr(exc, "hazard", "")
    elif report.when == "call" and report.passed:
        outcome = Outcome.PASS
        issues = profile.waivers_for(_test_id(item))
        link = issues[0].link if issues else ""   # a waived test that passed: waiver can be removed
        if should:                              # a recommendation not followed: pass, with the finding
            rule = should[0].rule_id
    spoiled = item.stash.get(classify.SPOILED_KEY, "") if report.when == "teardown" and report.passed else ""
    call_rec = item.stash.get(_CALL_RECORD, None)
    if spoiled and call_rec is not None and call_rec.outcome is Outcome.PASS:
        # the teardown hit a root cause another test reported: the test's own outcome, with the note
        note = spoiled + (f"; {call_rec.message}" if call_rec.message else "")
        rec = dataclasses.replace(call_rec, message=note, finished=getattr(report, "stop", 0.0) or time.time())
        classify.attach(item, report, rec)
        return
    if outcome is None:
        return
    checked = list(spec_ids(item))
    target = ctx.targets.get(profile.name)
    note = (classify.SHOULD_NOT_MET + "; ".join(str(v).split("\n")[0] for v in should)) if should else ""
    rec = TestRecord(
        nodeid=report.nodeid, test_id=_test_id(item), outcome=outcome, duration=report.duration,
        message=getattr(report, "wasxfail", "") or classify.short_message(report) or note,
        rule=rule or next(iter(checked), ""), link=link, profile=profile.name,
        rules=tuple(dict.fromkeys([*checked, *([rule] if rule else [])])),
        devices=tuple(target.device_ids) if target is not None else (),
        waiver_index=issue.index if issue else None, waiver_reason=issue.reason if issue else "",
        should=tuple(dict.fromkeys(v.rule_id for v in should)), hazard=hazard,
        test_key=item_key(item, profile.name),
        **item_arc(item),
        finished=getattr(report, "stop", 0.0) or time.time())
    classify.attach(item, report, rec)
    if report.when == "call":
        item.stash[_CALL_RECORD] = rec


#: item.stash key: the record the call phase decided (a teardown note may repeat it).
_CALL_RECORD = pytest.StashKey[TestRecord]()


def _test_id(item) -> str:
    return item.name
