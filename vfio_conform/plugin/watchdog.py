"""A watchdog thread for device operations that no signal can interrupt (an ioctl in D state).

The per-test timeout (timeout.py) is SIGALRM: its handler runs in the main thread only once the
system call in progress returns, so an ioctl stuck in the kernel in uninterruptible sleep is never
interrupted, and the CI job's own timeout later kills the process with nothing saying where it
hung. This thread, in every process that runs tests, looks twice a second: when a device
operation is still in progress `grace` seconds (the profile's timeouts.io) after the test's alarm
was due, it is declared hung and, once per operation, before anything kills the process:

* "hung in <operation> on <device> since <time>" is written to the result store (an infra-error
  row of the test, in the run of its profile), to stderr (the job log), to the run's JUnit file
  when none was written yet and to its Allure results (a `broken` result of the test, built from
  its record as the Allure listener builds one, the hung operation its last step);
* the device is retired for the rest of the run (its later tests are infra-errors with the same
  line; nothing more is sent to it);
* when `fleet run` started the run ($VFIO_CONFORM_RECOVERY_FILE), the line is appended to that
  file: `fleet run` tags the host's places for recovery, stops the run and exits 3.

The thread only reads the main thread's state (the armed alarm, the operation in flight) and
writes through its own store connection; it never touches the device.
"""
from __future__ import annotations

import datetime
import os
import sys
import threading
import time
from pathlib import Path
from xml.sax.saxutils import quoteattr

from ..base.constants import RECOVERY_FILE_ENV, STORE_NAME, reports_dir
from ..device import LAST_OPERATION
from ..device.lastop import describe_operation
from ..results import Outcome, TestRecord, open_store, store_location
from ..targets.items import item_arc, item_key, item_param
from .ci_outputs import run_host

#: How often the thread looks (seconds).
PERIOD = 0.5


def hung_line(operation: str, device: str, started_wall: float) -> str:
    since = datetime.datetime.fromtimestamp(started_wall, datetime.timezone.utc)
    return f"hung in {operation} on {device} since {since.strftime('%Y-%m-%dT%H:%M:%SZ')}"


class Watchdog:
    """pytest plugin owning the thread (started at session start, stopped at unconfigure)."""

    def __init__(self, config, ctx, timer):
        self.config, self.ctx, self.timer = config, ctx, timer
        self.reported: set[tuple] = set()        # operations (LAST_OPERATION.op) already reported
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def pytest_sessionstart(self, session) -> None:
        self._thread = threading.Thread(target=self._loop, name="vfio-conform-watchdog", daemon=True)
        self._thread.start()

    def pytest_unconfigure(self, config) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2 * PERIOD)

    def _loop(self) -> None:
        while not self._stop.wait(PERIOD):
            try:
                self.check()
            except Exception as exc:   # noqa: BLE001 - the watchdog must never take the run down
                print(f"vfio-conform: watchdog: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)

    def check(self, now: float | None = None) -> str | None:
        """Report the operation in flight if it outlived its test's alarm by the grace; its line."""
        armed, until = self.timer.armed, self.timer.armed_until
        op = LAST_OPERATION.op
        if armed is None or not LAST_OPERATION.in_progress or op in self.reported:
            return None
        item = armed[0]
        profile = item_param(item, "profile")
        grace = profile.timeouts.io if profile is not None else 1.0
        now = time.monotonic() if now is None else now
        if now < until + grace or op[2] > until:
            return None
        self.reported.add(op)
        device, what, started = op
        line = hung_line(describe_operation(what), device, time.time() - (now - started))
        self.lines.append(line)
        self.report(item, profile, device, line, now - started)
        return line

    def report(self, item, profile, device: str, line: str, duration: float) -> None:
        self._say(f"vfio-conform: {line} (test {item.nodeid}; the device is retired)")
        self._retire(item, profile, device, line)
        for step in (self._recovery_file, self._store, self._junit, self._allure):
            try:
                step(item, profile, line, duration)
            except Exception as exc:   # noqa: BLE001 - each output on its own: one failing keeps the others
                print(f"vfio-conform: watchdog: {step.__name__.strip('_')}: {type(exc).__name__}: {exc}",
                      file=sys.stderr, flush=True)

    def _say(self, text: str) -> None:
        """To the job log: pytest captures the test's stderr, and the test never ends to show it."""
        capman = self.config.pluginmanager.getplugin("capturemanager")
        if capman is None:
            print(text, file=sys.stderr, flush=True)
            return
        with capman.global_and_fixture_disabled():
            print(text, file=sys.stderr, flush=True)

    def _retire(self, item, profile, device: str, line: str) -> None:
        pool = (getattr(item, "funcargs", None) or {}).get("device_pool")
        if pool is None or profile is None:
            return
        for key, dev in list(pool.devices.items()):
            if key[0] == profile.name and dev.name == device:
                pool.broken[key] = f"device {device} retired: {line}"
                pool.devices.pop(key, None)      # never closed here: the main thread is inside it

    def _recovery_file(self, item, profile, line, duration) -> None:
        path = os.environ.get(RECOVERY_FILE_ENV)
        if path:
            with open(path, "a") as f:
                f.write(f"{line} (host {self.ctx.host})\n")

    def _record(self, item, profile, line, duration) -> TestRecord:
        name = profile.name if profile is not None else ""
        target = self.ctx.targets.get(name) if profile is not None else None
        return TestRecord(nodeid=item.nodeid, test_id=item.name, outcome=Outcome.INFRA_ERROR,
                          duration=duration, message=f"{line} (the device is retired; the run cannot end "
                                                     f"until the operation returns)",
                          profile=name, test_key=item_key(item, name) if name else item.name,
                          **item_arc(item), devices=tuple(target.device_ids) if target is not None else (),
                          finished=time.time())

    def _store(self, item, profile, line, duration) -> None:
        if self.config.getoption("vc_no_store") or profile is None:
            return
        store = open_store(store_location(self.config.getoption("vc_store"), reports_dir() / STORE_NAME))
        try:
            run_id = self.ctx.run_ids.get(profile.name)
            if run_id is None:               # a worker: the controller's running run of this profile
                owner = os.getppid()
                run_id = next((r["id"] for r in store.runs(limit=50, profile=profile.name, host=self.ctx.host)
                               if r.get("pid") in (owner, os.getpid()) and r["status"] == "running"), None)
            if run_id is not None:
                store.record(int(run_id), self._record(item, profile, line, duration))
        finally:
            store.close()

    def _junit(self, item, profile, line, duration) -> None:
        path = self.config.getoption("vc_junit")
        if not path or Path(path).exists():  # a whole file is never replaced by this one
            return
        suite = profile.name if profile is not None else "vfio-conform"
        classname = item.nodeid.split("::", 1)[0].replace("/", ".").removesuffix(".py")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(
            '<?xml version="1.0" encoding="utf-8"?>\n'
            f'<testsuites><testsuite name={quoteattr(suite)} tests="1" errors="1" failures="0" '
            f'skipped="0" time="{duration:.3f}" hostname={quoteattr(self.ctx.host)}>'
            f'<testcase classname={quoteattr(classname)} name={quoteattr(item.name)} time="{duration:.3f}">'
            f'<error message={quoteattr(line)} type="infra-error">{_xml_text(line)}</error>'
            "</testcase></testsuite></testsuites>\n", encoding="utf-8")

    def _allure(self, item, profile, line, duration) -> None:
        """The test's result, as the Allure listener would have written it had the test ended (the
        same labels, parameters and history id): broken, with the hung operation as its last step."""
        directory = self.config.getoption("vc_allure")
        if not directory:
            return
        from ..outputs import allure_results        # allure-python-commons: only with Allure output
        from .allure_listener import profile_part
        rec = self._record(item, profile, line, duration)
        prof, run = profile_part(self.ctx, rec.profile, run_host(self.ctx))
        writer = allure_results.ResultsWriter(directory)     # makes the directory when needed
        try:
            allure_results.write_result(writer, allure_results.result(
                rec, prof, run, allure_results.TestExtras(unfinished=LAST_OPERATION.op,
                                                          clock=time.time() - time.monotonic())))
        finally:
            writer.close()


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
