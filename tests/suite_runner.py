"""Run the conformance suites in a subprocess against a profile and read back the recorded verdicts."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def write_profile(tmp: Path, base: str, name: str, faults: list[dict] | None = None,
                  sim_config: dict | None = None, **overrides) -> Path:
    """A copy of profiles/<base>.yaml renamed to `name`, with sim faults, sim config and overrides."""
    data = yaml.safe_load((ROOT / "profiles" / f"{base}.yaml").read_text())
    data["name"] = name
    config = data.setdefault("backend_config", {})
    config["sim"] = dict(config.get("sim", {}), **(sim_config or {}), faults=faults or [])
    data.update(overrides)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_suites(profile: Path, tmp: Path, *extra: str,
               areas: tuple[str, ...] = ()) -> tuple[int, list[dict], str]:
    """(pytest exit code, result rows, output) of the suites (or only `areas`: 'fsm', 'data/test_stream.py')."""
    store = tmp / f"{profile.stem}.sqlite"
    paths = [str(ROOT / "suites" / a) for a in areas] or [str(ROOT / "suites")]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *paths, "--rootdir", str(ROOT), "-q",
         "-p", "no:cacheprovider", "--vc-profile", str(profile), "--vc-store", str(store), *extra],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    db = sqlite3.connect(store)
    db.row_factory = sqlite3.Row
    rows = [dict(r) for r in db.execute("SELECT test_id, outcome, rule, message, should, rules, arc_from, "
                                        "arc_to FROM results")]
    return proc.returncode, rows, proc.stdout + proc.stderr


def assert_caught(knob, code: int, rows: list[dict], out: str, where: str = "") -> None:
    """The suites failed (non-zero exit) with at least one `fail` row on the knob's rule, and every
    such row's message names the rule. A `should` rule is caught by a pass recorded as "should not
    met" naming it (or a failure, where the profile makes it a must)."""
    from vfio_conform.model.spec import RULES, SHOULD
    if RULES[knob.rule_id].level == SHOULD:
        noted = [r for r in rows if r["rule"] == knob.rule_id and f"[{knob.rule_id}]" in r["message"]
                 and (r["outcome"] == "fail" or knob.rule_id in (r["should"] or "").split())]
        assert noted, (f"fault {knob.name!r} ({knob.summary}){where}: no test recorded the should "
                       f"rule {knob.rule_id!r} as not met\n{out[-2000:]}")
        return
    failed = [r for r in rows if r["outcome"] == "fail"]
    assert code != 0, f"suites passed with fault {knob.name!r}{where}:\n{out[-2000:]}"
    rules = {r["rule"] for r in failed}
    assert knob.rule_id in rules, (f"fault {knob.name!r} ({knob.summary}){where} should fail rule "
                                   f"{knob.rule_id!r}; failed rules: {sorted(rules)}\n{out[-2000:]}")
    named = [r for r in failed if r["rule"] == knob.rule_id]
    assert all(f"[{knob.rule_id}]" in r["message"] for r in named), named[:3]
