"""Kernel warnings and resets on the real driver: mtty_warn (mtty built to WARN on one arc) fails
kernel.no-warnings on exactly the arc tests that walk that arc, with the kernel's own excerpt;
stock mtty passes every arc with the kernel log watched, passes QEMU's recovery sequence (failed
SET, SET the recover state, VFIO_DEVICE_RESET), and is not-supported for FLR with the reason."""
from __future__ import annotations

from pathlib import Path

import pytest

from vfio_conform.qemu_lab.harness import run_lab
from vfio_conform.qemu_lab.modbuild import WARN_ARC, WARN_ARC_MESSAGE
from vfio_conform.model.fsm import supported_states
from vfio_conform.model.plan import plan
from vfio_conform.targets.requirements import ARC_TARGETS
from vfio_conform.results import ResultStore
from vfio_conform.uapi.enums import MigState

pytestmark = pytest.mark.lab
HERE = Path(__file__).resolve().parent


def _rows(store_path: Path) -> list[dict]:
    store = ResultStore(store_path)
    return [r for run in store.runs() for r in store.results(run["id"])]


def _arc_tests_through(profile: str, arc: tuple[str, str], flags: int = 7) -> set[str]:
    out = set()
    for cur in supported_states(flags):
        for target in ARC_TARGETS:
            path = (cur, *(plan(cur, target, flags).path or ()))
            if arc in {(a.name, b.name) for a, b in zip(path, path[1:])}:
                out.add(f"test_arc[{profile}:{cur.name}->{MigState.label(target)}]")
    return out


def test_warning_variant_fails_exactly_its_arc_and_mtty_resets(lab_prepared, tmp_path):
    runs = run_lab([str(HERE / "profiles" / "mtty-warn.yaml"), "mtty"], tmp_path, workers=None,
                   extra=["-k", "test_arc or test_consumer_qemu_recovery or test_flr"], timeout=1500)
    (run,) = runs
    assert run.exit_code == 1, run
    check_rows(_rows(tmp_path / "results.sqlite"))


def check_rows(rows: list[dict]) -> None:
    """What the run must show: exactly the arc's tests fail, with the splat; stock mtty is clean."""
    failed = {r["test_id"] for r in rows if r["outcome"] == "fail"}
    expected = _arc_tests_through("mtty-warn", WARN_ARC)
    assert failed == expected and expected, (failed, expected)
    for r in rows:
        if r["outcome"] == "fail":
            assert r["rule"] == "kernel.no-warnings", r
            # the kernel's own splat: the WARN's message, where it fired (mtty_step_state is
            # inlined into mtty_set_state), the task, the call trace through the vfio ioctl
            assert WARN_ARC_MESSAGE in r["message"] and "RIP: 0010:mtty_set_state" in r["message"], r["message"]
            assert "WARNING: CPU:" in r["message"] and "[mtty_warn]" in r["message"], r["message"]
            assert "vfio_device_fops_unl_ioctl" in r["message"] and "---[ end trace" in r["message"]
    assert not [r for r in rows if r["outcome"] == "infra-error"], rows
    mtty = {r["test_id"]: r for r in rows if "[mtty" in r["test_id"] and "[mtty-warn" not in r["test_id"]}
    arcs = [r for t, r in mtty.items() if t.startswith("test_arc[")]
    assert len(arcs) > 50 and {r["outcome"] for r in arcs} <= {"pass", "not-supported", "gated"}
    assert mtty["test_consumer_qemu_recovery[mtty]"]["outcome"] == "pass", mtty
    for state in ("STOP_COPY", "PRE_COPY"):
        flr = mtty[f"test_flr_ends_session_and_leaves_running[mtty-{state}]"]
        assert flr["outcome"] == "not-supported", flr      # mtty: Status 0x0200, capability pointer 0
        assert "no Function Level Reset: its config space has no capability list" in flr["message"], flr
