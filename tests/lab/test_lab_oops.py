"""A driver that oopses the kernel during a test: mtty_oops (mtty built to write through a NULL file
pointer on the arc PRE_COPY_P2P -> PRE_COPY of its set_state) kills the guest (oops=panic). The
test it was running is a fail under kernel.no-warnings with the oops and the module named in its
trace, not an infra-error; a new boot runs every test that had not run (stock mtty included), and
nothing is left unjudged. Stock mtty also ends its sessions on close_device (session.close-device)."""
from __future__ import annotations

from pathlib import Path

import pytest

from vfio_conform.qemu_lab.harness import run_lab
from vfio_conform.qemu_lab.modbuild import OOPS_ARC
from vfio_conform.results import ResultStore

pytestmark = pytest.mark.lab
HERE = Path(__file__).resolve().parent


def test_oops_in_the_driver_fails_its_test_and_the_lab_carries_on(lab_prepared, tmp_path):
    runs = run_lab([str(HERE / "profiles" / "mtty-oops.yaml"), "mtty"], tmp_path, workers=None,
                   extra=["-k", "test_arc or test_session_ends_on_close_device"], timeout=1500)
    assert len(runs) == 2, runs                    # the boot that died, and the one after it
    assert runs[0].blamed == "mtty_oops" and runs[0].exit_code == 1, runs[0]
    store = ResultStore(tmp_path / "results.sqlite")
    rows = [r for run in store.runs(limit=100) for r in store.results(run["id"])]
    died = f"test_arc[mtty-oops:{OOPS_ARC[0]}->{OOPS_ARC[1]}]"
    failed = {r["test_id"]: r for r in rows if r["outcome"] == "fail"}
    assert set(failed) == {died}, sorted(failed)
    msg = failed[died]["message"]
    assert failed[died]["rule"] == "kernel.no-warnings", failed[died]
    assert "the kernel crashed in mtty_oops" in msg and "[mtty_oops]" in msg, msg
    assert "NULL pointer dereference" in msg and "mtty_set_state" in msg, msg
    assert not [r for r in rows if r["outcome"] == "infra-error"], rows
    ids = [r["test_id"] for r in rows]
    assert len(ids) == len(set(ids)), "a test judged twice"
    arcs = [r for r in rows if r["test_id"].startswith("test_arc[mtty:")]
    assert len(arcs) > 50 and {r["outcome"] for r in arcs} <= {"pass", "not-supported", "gated"}
    oops_arcs = [r for r in rows if r["test_id"].startswith("test_arc[mtty-oops:")]
    assert len(oops_arcs) == len(arcs), (len(oops_arcs), len(arcs))     # every arc judged
    close = [r for r in rows if r["test_id"].startswith("test_session_ends_on_close_device[mtty-")]
    assert close and {r["outcome"] for r in close} == {"pass"}, close
