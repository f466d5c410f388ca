"""A run's memory and stream throughput: per test on its report, per profile in the run's records.

In every process (xdist workers included) each test's call is wrapped: the bytes the harness moved
through data fds (device/streamstats.py) and their rate become the test's `stream_bytes` and
`stream_mib_s` properties, and the process's peak resident set (`peak_rss_mib`) is added whenever
it rose. The controller sums them per profile: `Performance`, stored in the run's environment record
(`performance`) and written to the JSON summary (docs/json-summary.md).
"""
from __future__ import annotations

import dataclasses
import json

import pytest

from ..device.streamstats import STATS, peak_rss_mib
from .classify import record_of

PLUGIN_NAME = "vfio-conform-perf"
#: A stream test's MiB/s is kept per test for at most this many tests per profile (the slowest stay).
MAX_TESTS = 64
#: A test's rate is listed when it moved at least this much (a few bytes' rate says nothing).
MIN_TEST_BYTES = 1 << 20


@dataclasses.dataclass
class Performance:
    """One profile's run: peak RSS of the test processes, bytes moved, and MiB/s per stream test."""

    peak_rss_mib: float = 0.0
    stream_bytes: int = 0
    stream_seconds: float = 0.0
    tests: dict = dataclasses.field(default_factory=dict)      # nodeid -> MiB/s

    @property
    def stream_mib_s(self) -> float | None:
        if not self.stream_seconds:
            return None
        return round(self.stream_bytes / self.stream_seconds / (1 << 20), 1)

    def as_dict(self) -> dict:
        slowest = dict(sorted(self.tests.items(), key=lambda kv: kv[1])[:MAX_TESTS])
        return {"peak_rss_mib": self.peak_rss_mib, "stream_bytes": self.stream_bytes,
                "stream_mib_s": self.stream_mib_s, "stream_tests": slowest}


class PerfWatch:
    """Registered in every process; the controller's instance aggregates."""

    def __init__(self):
        self.hwm = 0.0
        self.by_node: dict[str, dict] = {}
        self.profile_of: dict[str, str] = {}
        #: what the session's end stored: the run's summary says the same (writing the HTML report
        #: afterwards grows the process, and `export` rebuilds the summary from the store)
        self.stored: dict[str, Performance] | None = None

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):
        before = (STATS.bytes, STATS.seconds)
        yield
        moved, seconds = STATS.bytes - before[0], STATS.seconds - before[1]
        if moved:
            rate = moved / seconds / (1 << 20) if seconds > 0 else 0.0
            item.user_properties += [("stream_bytes", moved), ("stream_mib_s", round(rate, 1))]
        hwm = peak_rss_mib()
        if hwm > self.hwm:
            self.hwm = hwm
            item.user_properties.append(("peak_rss_mib", hwm))

    def pytest_runtest_logreport(self, report) -> None:
        seen = {k: v for k, v in report.user_properties if k in ("stream_bytes", "stream_mib_s", "peak_rss_mib")}
        rec = record_of(report)
        if rec is not None and rec.profile:
            self.profile_of[report.nodeid] = rec.profile
        if seen:
            self.by_node.setdefault(report.nodeid, {}).update(seen)

    def per_profile(self, profiles) -> dict[str, Performance]:
        out = {name: Performance() for name in profiles}
        own = peak_rss_mib()
        for nodeid, seen in self.by_node.items():
            name = self.profile_of.get(nodeid) or _profile_in(nodeid, out)
            if name is None:
                continue
            perf = out[name]
            perf.peak_rss_mib = max(perf.peak_rss_mib, float(seen.get("peak_rss_mib", 0.0)))
            n, rate = int(seen.get("stream_bytes", 0)), float(seen.get("stream_mib_s", 0.0))
            if n:
                perf.stream_bytes += n
                perf.stream_seconds += n / (rate * (1 << 20)) if rate else 0.0
                if n >= MIN_TEST_BYTES:
                    perf.tests[nodeid] = rate
        for perf in out.values():
            perf.peak_rss_mib = max(perf.peak_rss_mib, own)
        return out

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session) -> None:
        """Controller: the performance goes into each run's stored environment record."""
        from .context import CONTEXT_KEY
        config = session.config
        ctx = config.stash.get(CONTEXT_KEY, None)
        if ctx is None or hasattr(config, "workerinput") or ctx.store is None:
            return
        from ..results import StoreError
        self.stored = self.per_profile(ctx.targets)
        for name, perf in self.stored.items():
            run_id = ctx.run_ids.get(name)
            if run_id is None:
                continue
            try:
                env = ctx.store.environment(run_id)
                if env is not None:
                    ctx.store.set_environment(run_id, dataclasses.replace(
                        env, performance=json.dumps(perf.as_dict(), sort_keys=True)))
            except StoreError:
                return


def _profile_in(nodeid: str, profiles) -> str | None:
    """The profile a parametrized node id names ("test_x[PROFILE-...]" / "[PROFILE:...]")."""
    params = nodeid.rsplit("[", 1)[-1] if "[" in nodeid else ""
    for name in sorted(profiles, key=len, reverse=True):
        if params.startswith(name):
            return name
    return None


def performance_of(config, profiles) -> dict[str, dict]:
    """Per profile, the run's performance as a dict (empty when the plugin did not run)."""
    watch = config.pluginmanager.get_plugin(PLUGIN_NAME) if config is not None else None
    if watch is None:
        return {}
    measured = watch.stored if watch.stored is not None else watch.per_profile(profiles)
    return {name: perf.as_dict() for name, perf in measured.items()}
