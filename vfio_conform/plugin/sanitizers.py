"""Sanitizer reports of user-space device servers fail the test, as a kernel WARN does.

A backend whose devices are served by a user-space process says where that process's output goes
(`server_log(device_id)`: the vfio-user backend reads `<socket>.log`, which `serve` writes; the sim
keeps an in-process log). Before each test of a profile every device's log is read to its end;
after the teardown the new text is searched for AddressSanitizer / UndefinedBehaviorSanitizer
reports (device/sanitizers.py). A report fails the test under `server.no-sanitizer-report` with the
report in the message and as a report section. A backend without such logs (kernel) is not
checked, and a device whose log cannot be found is named in the terminal summary.
"""
from __future__ import annotations

from ..backends import registry
from ..device.sanitizers import SanitizerReport, find_reports
from ..base.errors import SpecViolation
from ..targets.items import item_param
from .logwatch import AroundTestWatch

RULE = "server.no-sanitizer-report"


class ServerLogWatch(AroundTestWatch):
    """pytest plugin: each device's server log, read around every test of its profile."""

    watched = "server log"

    def __init__(self, targets):
        self.targets = targets               # profile name -> Target (device_ids)
        self.logs: dict[str, object] = {}
        self.unavailable: dict[str, str] = {}
        self.armed: set[str] = set()

    def _logs(self, profile) -> list:
        return [log for _, log in self._named_logs(profile)]

    def _named_logs(self, profile) -> list:
        opener = getattr(registry.get(profile.backend), "server_log", None)
        target = self.targets.get(profile.name)
        if opener is None or target is None:
            return []
        out = []
        for device_id in target.device_ids:
            if device_id not in self.logs and device_id not in self.unavailable:
                try:
                    self.logs[device_id] = opener(device_id)
                except OSError as exc:
                    self.unavailable[device_id] = f"{exc.filename or device_id}: {exc.strerror or exc}"
            if self.logs.get(device_id) is not None:
                out.append((device_id, self.logs[device_id]))
        return out

    def arm(self, item) -> None:
        profile = item_param(item, "profile")
        if profile is None:
            return
        for log in self._logs(profile):
            log.read_new()                   # what came before this test is not this test's
        self.armed.add(item.nodeid)

    def finding(self, item) -> SpecViolation | None:
        profile = item_param(item, "profile")
        if profile is None or item.nodeid not in self.armed:
            return None
        self.armed.discard(item.nodeid)
        reports: list[SanitizerReport] = []
        servers: list[str] = []
        for device_id, log in self._named_logs(profile):
            found = find_reports(log.read_new())
            reports += found
            servers += [device_id] if found else []
        if not reports:
            return None
        message, excerpt = describe(reports)
        item.add_report_section("teardown", "server sanitizer reports", excerpt)
        return SpecViolation(RULE, message, ", ".join(servers))

    def pytest_terminal_summary(self, terminalreporter) -> None:
        for device_id, why in sorted(self.unavailable.items()):
            terminalreporter.write_line(f"vfio-conform: server log of {device_id} not checked for "
                                        f"sanitizer reports: {why}")


def describe(reports: list[SanitizerReport]) -> tuple[str, str]:
    """(the finding's message: what was reported, then the excerpt; the excerpt alone)."""
    head = (f"the server printed {len(reports)} sanitizer report(s) during the test: "
            + "; ".join(f"{r.kind}: {r.headline}" for r in reports))
    excerpt = "\n\n".join(r.excerpt() for r in reports)
    return head + "\n" + excerpt, excerpt
