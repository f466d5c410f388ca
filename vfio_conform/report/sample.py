"""Synthetic runs (the shape the suites record) for the report's tests, demos and screenshot."""
from __future__ import annotations

import time

from ..results import Outcome, RunMeta, TestRecord
from ..results.keys import strip_profile

STATES = ["RUNNING", "STOP", "STOP_COPY", "RESUMING", "RUNNING_P2P", "PRE_COPY", "PRE_COPY_P2P"]
TARGETS = [*STATES, "ERROR", "INVALID(8)"]
OTHER = [("suites/data/test_stream.py", "test_round_trip_restores_state", "stream.round-trip"),
         ("suites/data/test_stream.py", "test_stop_copy_eof", "stream.stop-copy-eof"),
         ("suites/data/test_precopy.py", "test_precopy_info_outside_precopy", "precopy.info-only-in-precopy"),
         ("suites/fsm/test_arcs.py", "test_migration_flags_are_valid", "fsm.flags-valid")]


def sample_rows(profile: str, outcomes: dict[str, tuple[str, str]] | None = None,
                repeat: int = 1) -> list[TestRecord]:
    """Records of one run: every arc plus a few data tests, all passing unless `outcomes` says
    {test_id: (outcome, link)}; `repeat` > 1 adds numbered copies of the data tests (bulk)."""
    outcomes = outcomes or {}
    recs = []
    for frm in STATES:
        for to in TARGETS:
            tid = f"test_arc[{profile}:{frm}->{to}]"
            rule = "fsm.illegal-arc-einval" if to in ("ERROR", "INVALID(8)") else "fsm.legal-arc"
            recs.append(_rec("suites/fsm/test_arcs.py", tid, rule, outcomes, profile, (frm, to)))
    for i in range(repeat):
        for path, name, rule in OTHER:
            tid = f"{name}[{profile}]" if i == 0 else f"{name}[{profile}-{i}]"
            recs.append(_rec(path, tid, rule, outcomes, profile))
    return recs


def _rec(path: str, tid: str, rule: str, outcomes, profile: str,
         arc: tuple[str, str] = ("", "")) -> TestRecord:
    outcome, link = outcomes.get(tid, ("pass", ""))
    msg = ""
    if outcome == "fail":
        msg = f"[{rule}] {tid}: expected errno 0, got EINVAL (22)"
    elif outcome == "infra-error":
        msg = "HarnessTimeout: test exceeded timeouts.test = 30s"
    elif outcome == "known-issue":
        msg = f"known issue ({link}): driver bug"
    elif outcome == "gated":
        msg = "gated: blocked arc may hang this kernel"
    elif outcome == "not-supported":
        msg = "not-supported: profile lacks PRE_COPY"
    # ERROR, out-of-range states and states the run shows the device lacks are refused requests
    lacks = outcomes.get(f"test_arc[{profile}:{arc[1]}->{arc[1]}]", ("",))[0] == "not-supported"
    expect = ("refuse" if arc[1] in ("ERROR", "INVALID(8)") or lacks else "accept") if arc[1] else ""
    return TestRecord(f"{path}::{tid}", tid, Outcome(outcome), 0.01, msg, rule, link, profile=profile,
                      rules=(rule,), arc_from=arc[0], arc_to=arc[1],
                      test_key=strip_profile(tid, profile), arc_expect=expect)


def write_run(store, profile: str, outcomes: dict | None = None, kernel: str = "6.12.0",
              driver: str = "sim", session: str = "", repeat: int = 1,
              argv: str = "vfio-conform run --profile sample", host: str = "lab1",
              harness_build: str = "", status: str = "finished") -> int:
    """Store one finished synthetic run; returns its id."""
    run = store.begin_run(RunMeta(profile=profile, backend="sim", devices="sim0,sim1", driver=driver,
                                  kernel=kernel, harness_version="0.1.0", host=host,
                                  session=session or f"s{time.time_ns():x}", argv=argv,
                                  started=time.time(), profile_hash="0123456789ab",
                                  harness_build=harness_build))
    for rec in sample_rows(profile, outcomes, repeat):
        store.record(run, rec)
    if status != "running":
        store.end_run(run, status)
    return run


def demo_outcomes(profile: str) -> dict[str, tuple[str, str]]:
    """A run showing every outcome (for the README screenshot)."""
    a = f"test_arc[{profile}:"
    out = {f"{a}{s}->{t}]": ("not-supported", "") for s in STATES[5:] for t in TARGETS}
    out.update({f"{a}RUNNING->STOP_COPY]": ("fail", ""), f"{a}STOP->RESUMING]": ("fail", ""),
                f"{a}RESUMING->ERROR]": ("known-issue", "https://bugs.example/123"),
                f"{a}STOP_COPY->INVALID(8)]": ("infra-error", ""),
                f"{a}RUNNING_P2P->STOP_COPY]": ("gated", ""),
                f"{a}STOP->STOP]": ("pass", "https://bugs.example/77"),
                f"test_stop_copy_eof[{profile}]": ("fail", "")})
    return out
