"""Vendor-written profiles with read access on every BAR of ordinary emulated PCI devices (QEMU's
edu, ivshmem-plain, e1000e, virtio-net-pci) run clean on vfio-pci, the reference driver: where
vfio-pci's read() does not reach the device (the MSI-X tables of e1000e BAR3 and virtio-net BAR1)
pread is compared with mmap only outside it."""
from __future__ import annotations

from pathlib import Path

import pytest

from vfio_conform.qemu_lab.harness import run_lab
from vfio_conform.results import ResultStore

pytestmark = pytest.mark.lab
HERE = Path(__file__).resolve().parent
PROFILES = [str(HERE / "profiles" / f"read-all-{n}.yaml") for n in ("edu", "e1000e", "virtio-net")]


def test_read_access_on_every_bar_runs_clean_on_vfio_pci(lab_prepared, tmp_path):
    (run,) = run_lab([*PROFILES, "qemu-ivshmem"], tmp_path, workers=None, extra=["-k", "region"],
                     timeout=1800)
    store = ResultStore(tmp_path / "results.sqlite")
    rows = [r for r_ in store.runs(limit=100) for r in store.results(r_["id"])]
    bad = [(r["test_id"], r["outcome"], r["message"][:300]) for r in rows
           if r["outcome"] not in ("pass", "not-supported", "gated")]
    assert not bad, bad
    assert run.exit_code == 0, run
    coherent = {r["test_id"]: r["outcome"] for r in rows
                if r["test_id"].startswith("test_region_pread_and_mmap_agree[")}
    for name in ("read-all-e1000e:BAR3", "read-all-virtio-net:BAR1", "read-all-edu:BAR0"):
        assert coherent.get(f"test_region_pread_and_mmap_agree[{name}]") == "pass", coherent
