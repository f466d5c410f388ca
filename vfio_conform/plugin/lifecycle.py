"""A run's lifecycle in the controller: running -> finished | incomplete (reason), the exit code,
and the status lines of the run summary (SIGTERM itself: base/interrupts.py)."""
from __future__ import annotations

from collections import Counter

import pytest

from ..base.exitcodes import Exit, verdict
from ..base.interrupts import Terminated, deferred, raise_if_terminated, restore_sigterm, terminated
from ..results import Reason, RunStatus, StoreError, describe_reason

#: The exit code the plugin chose (cmd_run reads it; pytest's own code may be remapped).
EXIT_KEY = pytest.StashKey[int]()


class RunLifecycle:
    """Registered in the controller when a profile is selected (with or without a store)."""

    def __init__(self, ctx, selection=None):
        self.ctx = ctx
        self.outcomes: dict[str, Counter] = {name: Counter() for name in ctx.targets}
        self.tests: dict[str, set[str]] = {name: set() for name in ctx.targets}
        #: selection.Selection: which tests of each profile were selected (None: not tracked)
        self.selection = selection
        self.stall_s: float | None = None
        self.collect_errors = 0
        self.interrupt: Reason | None = None
        self.store_error: str | None = None
        self.statuses: dict[str, tuple[str, str]] = {}
        self.store_closed = False
        #: where a crash's traceback is saved (the run's JUnit directory; set by the plugin)
        self.crash_dir: str | None = None

    # -- what happened ---------------------------------------------------------------------
    def seen(self, profile: str, nodeid: str, outcome: str) -> None:
        """One verdict (called by the recorder for every report that carries one)."""
        if profile in self.outcomes:
            self.outcomes[profile][outcome] += 1
            self.tests[profile].add(nodeid)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item, nextitem) -> None:
        raise_if_terminated()

    @pytest.hookimpl(trylast=True)      # after the recorder kept the row
    def pytest_runtest_logreport(self, report) -> None:
        raise_if_terminated()

    def store_lost(self, exc: StoreError) -> None:
        self.store_error = str(exc)

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            self.collect_errors += 1

    def stalled(self, seconds: float) -> None:
        """The controller waited `seconds` without word from any worker (workers.WorkerWatch)."""
        self.stall_s = seconds

    def missing(self, profile: str) -> set[str]:
        """Selected tests of `profile` with no recorded verdict."""
        sel = self.selection.of(profile) if self.selection is not None else None
        return sel.selected - self.tests[profile] if sel is not None else set()

    def pytest_keyboard_interrupt(self, excinfo) -> None:
        if self.stall_s is not None:
            self.interrupt = Reason.STALLED
        elif isinstance(excinfo.value, Terminated):
            self.interrupt = Reason.TERMINATED
        elif not isinstance(excinfo.value, pytest.Session.Interrupted):   # a real Ctrl-C
            self.interrupt = Reason.INTERRUPTED

    # -- how it ended ----------------------------------------------------------------------
    def status_of(self, profile: str, session, exitstatus) -> tuple[str, str]:
        if self.store_error:
            return RunStatus.INCOMPLETE.value, Reason.STORE_LOST.value
        if self.stall_s is not None:
            return RunStatus.INCOMPLETE.value, Reason.STALLED.value
        if exitstatus == pytest.ExitCode.INTERNAL_ERROR:
            return RunStatus.INCOMPLETE.value, Reason.CRASHED.value
        if terminated():
            return RunStatus.INCOMPLETE.value, Reason.TERMINATED.value
        if self.interrupt is not None:
            return RunStatus.INCOMPLETE.value, self.interrupt.value
        if self.collect_errors or exitstatus == pytest.ExitCode.USAGE_ERROR:
            return RunStatus.INCOMPLETE.value, Reason.COLLECTION_ERROR.value
        if not self.tests[profile]:
            return RunStatus.INCOMPLETE.value, Reason.EMPTY.value
        short = bool(self.missing(profile))
        if (session.shouldfail or session.shouldstop or short
                or exitstatus == pytest.ExitCode.INTERRUPTED):
            return RunStatus.INCOMPLETE.value, Reason.PARTIAL.value
        return RunStatus.FINISHED.value, ""

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus) -> None:
        store = self.ctx.store
        for name in self.ctx.targets:
            self.statuses[name] = self.status_of(name, session, exitstatus)
            run_id = self.ctx.run_ids.get(name)
            sel = self.selection.of(name) if self.selection is not None else None
            if store is not None and run_id is not None and not self.store_error:
                try:
                    with deferred():
                        if sel is not None:
                            store.set_selection(run_id, len(sel.selected), sel.total)
                        store.end_run(run_id, *self.statuses[name])
                except StoreError as exc:       # e.g. the disk filled up at the very end
                    self.store_error = str(exc)
                    self.statuses[name] = (RunStatus.INCOMPLETE.value, Reason.STORE_LOST.value)
        if self.store_error and store is not None:
            for name, run_id in self.ctx.run_ids.items():   # where still possible
                self.statuses[name] = (RunStatus.INCOMPLETE.value, Reason.STORE_LOST.value)
                try:
                    store.end_run(run_id, *self.statuses[name])
                except StoreError:
                    pass
        if store is not None:
            store.close()
            self.store_closed = True
        finished = all(s == RunStatus.FINISHED.value for s, _ in self.statuses.values())
        code = verdict((o for c in self.outcomes.values() for o in c), finished)
        if exitstatus == pytest.ExitCode.USAGE_ERROR:
            code = Exit.USAGE
        session.config.stash[EXIT_KEY] = int(code)
        session.exitstatus = int(code)

    def end_crashed(self, exc: BaseException) -> None:
        """Something outside the tests raised before the runs were ended: end them `incomplete`
        (terminated for SIGTERM, interrupted for Ctrl-C, else crashed), where the store allows."""
        reason = (Reason.TERMINATED if isinstance(exc, Terminated) or terminated()
                  else Reason.INTERRUPTED if isinstance(exc, KeyboardInterrupt) else Reason.CRASHED)
        store = self.ctx.store
        for name, run_id in self.ctx.run_ids.items():
            self.statuses[name] = (RunStatus.INCOMPLETE.value, reason.value)
            if store is not None and not self.store_error and not self.store_closed:
                try:
                    with deferred():
                        store.end_run(run_id, *self.statuses[name])
                except StoreError as err:
                    self.store_error = str(err)

    def pytest_internalerror(self, excrepr, excinfo):
        """A pytest INTERNALERROR (a plugin's hook raising where pytest catches it): one line
        naming it and the saved traceback instead of pytest's INTERNALERROR> lines."""
        import sys
        from pathlib import Path

        from ..base.outfile import save_traceback
        saved = save_traceback(str(excrepr), self.crash_dir)
        tb = excinfo.traceback
        hooks = [e for e in tb if e.name.startswith("pytest_")]
        entry = hooks[-1] if hooks else (tb[-1] if len(tb) else None)
        where = f" at {Path(str(entry.path)).name}:{entry.lineno + 1} in {entry.name}" if entry else ""
        first = (str(excinfo.value).strip().splitlines() or [""])[0][:300]
        sys.stdout.flush()
        sys.stderr.write(f"vfio-conform: error: INTERNALERROR: {excinfo.typename}: {first}{where}; the run "
                         f"ends incomplete (crashed); traceback: {saved or 'not saved'}\n")
        sys.stderr.flush()
        return True

    def pytest_unconfigure(self, config) -> None:
        """Runs pytest never ended (a plugin raised in pytest_sessionstart: no sessionfinish) are
        ended `crashed` here, never left `running`."""
        restore_sigterm()
        if self.ctx.run_ids and not self.statuses:
            self.end_crashed(RuntimeError("pytest ended without finishing the session"))
            session_code = config.stash.get(EXIT_KEY, None)
            if session_code is None:
                config.stash[EXIT_KEY] = int(Exit.INCOMPLETE)
        if self.ctx.store is not None and not self.store_closed:
            self.ctx.store.close()
            self.store_closed = True

    def pytest_terminal_summary(self, terminalreporter) -> None:
        tr = terminalreporter
        tr.section("vfio-conform runs")
        for name, (status, reason) in self.statuses.items():
            run_id = self.ctx.run_ids.get(name)
            counts = " ".join(f"{k}={v}" for k, v in sorted(self.outcomes[name].items())) or "no results"
            why = f" ({reason}: {describe_reason(reason)})" if reason else ""
            sel = self.selection.of(name) if self.selection is not None else None
            tr.write_line(f"{name}: run #{run_id if run_id is not None else '-'} {status}{why}; {counts}")
            if sel is not None and not sel.complete:
                tr.write_line(f"{name}: {sel.label()} of the profile's suite selected: not a qualification")
            lost = sorted(self.missing(name))
            if lost and status != RunStatus.FINISHED.value:
                tr.write_line(f"{name}: {len(lost)} selected test(s) have no verdict, e.g. "
                              f"{', '.join(lost[:3])}", red=True)
        if self.store_error:
            tr.write_line(f"store lost: {self.store_error}", red=True)
        code = tr.config.stash.get(EXIT_KEY, None)
        if code is not None:
            subsets = [f"{name} {sel.label().removeprefix('subset ')}" for name in self.statuses
                       for sel in [self.selection.of(name) if self.selection is not None else None]
                       if sel is not None and not sel.complete]
            note = (f" of a subset ({', '.join(subsets)}): not a qualification"
                    if subsets and code == Exit.CONFORMANT else "")
            tr.write_line(f"exit {code}: {_EXIT_TEXT[Exit(code)]}{note}")


class RunGuard:
    """Outermost wrapper of pytest_sessionfinish: a plugin (or an output writer) raising there
    before the lifecycle ended the runs must not leave them `running`."""

    def __init__(self, lifecycle: RunLifecycle):
        self.lifecycle = lifecycle

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session, exitstatus):
        try:
            return (yield)
        except BaseException as exc:
            self.lifecycle.end_crashed(exc)
            raise


_EXIT_TEXT = {Exit.CONFORMANT: "conformant", Exit.NONCONFORMANT: "non-conformant (spec violation)",
              Exit.USAGE: "usage or configuration error",
              Exit.INCOMPLETE: "infrastructure error or incomplete run"}
