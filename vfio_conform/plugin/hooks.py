"""Hook implementations: configure, parametrize from the model, classify, record, time out."""
from __future__ import annotations

import pytest

from ..checks import drain_should_not_met
from ..errors import ConfigError
from ..model.fsm import supported_states
from ..model.plan import plan
from ..results import Outcome, StoreError
from ..uapi.enums import MIG_STATE_NR, MigState
from . import classify, params
from .allure_meta import write_run_files
from .context import CONTEXT_KEY, build_context, open_store
from .items import item_param
from .lifecycle import RunLifecycle, install_sigterm
from .options import add_options
from .recorder import ResultRecorder
from .rulecheck import spec_ids
from .timeout import TestTimer, usable
from .waivers import WaiverLedger, waiver_message

#: Requested states of the transition matrix: every state, ERROR and the first invalid value.
ARC_TARGETS = [*[s for s in MigState if s is not MigState.ERROR], MigState.ERROR, MIG_STATE_NR]


def pytest_addoption(parser) -> None:
    add_options(parser)


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "vc_spec(*rule_ids): the spec rules a test checks (ids of "
                                       "vfio_conform/model/spec.py, checked at collection)")
    config.addinivalue_line("markers", "vc_requires(*flags): migration flags/features the test needs "
                                       "(absent: not-supported)")
    params.register(config)                       # issue 5: vc_protocol marker
    try:
        ctx = build_context(config)
    except ConfigError as exc:
        raise pytest.UsageError(f"vfio-conform: {exc}") from None
    if ctx is None:
        return
    config.stash[CONTEXT_KEY] = ctx
    if usable():
        config.pluginmanager.register(TestTimer(), "vfio-conform-timer")
    if config.option.collectonly:      # listing tests runs nothing: no run is begun or judged
        return
    if not hasattr(config, "workerinput"):
        try:
            open_store(config, ctx)
        except StoreError as exc:
            raise pytest.UsageError(f"vfio-conform: {exc}") from None
        write_run_files(config, ctx)
        lifecycle = RunLifecycle(ctx)
        config.pluginmanager.register(lifecycle, "vfio-conform-lifecycle")
        config.pluginmanager.register(ResultRecorder(ctx, lifecycle), "vfio-conform-recorder")
        config.pluginmanager.register(WaiverLedger(ctx), "vfio-conform-waivers")
        install_sigterm()


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
    if params.parametrize(metafunc, ctx.profiles):     # issue 5: ("profile", "region") tests
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
    for item in items:
        profile = item_param(item, "profile")
        if profile is not None:
            item.add_marker(pytest.mark.xdist_group(profile.name))
    params.gate_protocol(items)                   # issue 5: v1/v2 suites on the matching profiles


def pytest_runtest_setup(item) -> None:
    ctx = _ctx(item.config)
    profile = item_param(item, "profile")
    if ctx is None or profile is None:
        return
    drain_should_not_met()                  # findings of an earlier test are not this test's
    if ctx.progress_file:
        with open(ctx.progress_file, "a") as f:
            f.write(item.nodeid + "\n")
    for mark in item.iter_markers("vc_requires"):
        for need in mark.args:
            if not _has(profile, need):
                pytest.skip(f"{classify.NOT_SUPPORTED}profile {profile.name} lacks {_need_name(need)}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the verdict; a violation of the rule a waiver names becomes an xfail 'known issue'.

    Only a SpecViolation of the waiver's rule is waived: another rule failing in the same test, a
    plain assertion or an errno the test did not allow for stays a failure.
    """
    result = yield
    report = result.get_result()
    profile = item_param(item, "profile")
    if profile is None or _ctx(item.config) is None:
        return
    outcome, rule, link, waiver, note = None, "", "", None, ""
    should = drain_should_not_met() if report.when == "call" else []
    if report.failed:
        outcome, rule = classify.failure_outcome(call.excinfo, report.when)
        issue = profile.known_issue(_test_id(item), rule) if outcome is Outcome.FAIL and rule else None
        if issue:
            outcome, link, waiver = Outcome.KNOWN_ISSUE, issue.link, issue.index
            report.outcome = "skipped"
            report.wasxfail = waiver_message(issue, str(call.excinfo.value))
    elif report.skipped and not hasattr(report, "wasxfail"):
        outcome = classify.skip_outcome(classify.short_message(report))
    elif report.when == "call" and report.passed:
        outcome = Outcome.PASS
        issues = profile.waivers_for(_test_id(item))
        link = issues[0].link if issues else ""   # a waived test that passes: waiver can be removed
        if should:                              # a recommendation not followed: pass, with the finding
            rule = should[0].rule_id
            note = classify.SHOULD_NOT_MET + "; ".join(str(v).split("\n")[0] for v in should)
    if outcome is not None:
        rule = rule or next(iter(spec_ids(item)), "")
        report.user_properties = list(report.user_properties) + [
            ("vc_profile", profile.name), ("vc_test_id", _test_id(item)),
            ("vc_outcome", outcome.value), ("vc_rule", rule), ("vc_link", link), ("vc_note", note)]
        if waiver is not None:
            report.user_properties.append(("vc_waiver", waiver))




def _test_id(item) -> str:
    return item.name


def _has(profile, need) -> bool:
    from ..uapi.enums import MigFlag
    if isinstance(need, MigFlag):
        return bool(profile.flags & need)
    return bool(getattr(profile, need))


def _need_name(need) -> str:
    return getattr(need, "name", None) or str(need)
