"""On the real mtty driver in the lab: the run's environment (kernel, module, version, srcversion,
IOMMU mode) is captured and stored, JUnit carries it per profile, and KTAP passes the kernel's parser."""
from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from vfio_conform.qemu_lab.harness import run_lab
from vfio_conform.qemu_lab.session import GUEST_RESULTS
from vfio_conform.results import ResultStore
from vfio_conform.results.environment import NOT_EXPOSED

pytestmark = pytest.mark.lab
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import kunit_tools  # noqa: E402


def test_mtty_environment_junit_and_ktap(lab_prepared, tmp_path):
    (run,) = run_lab(["mtty"], tmp_path, workers=None,
                     extra=["-k", "test_arc and RUNNING-", "--vc-ktap", f"{GUEST_RESULTS}/reports/lab.ktap"])
    assert run.exit_code == 0, run
    store = ResultStore(tmp_path / "results.sqlite", readonly=True)
    (meta,) = store.runs()
    env = store.environment(meta["id"])
    store.close()
    assert env.kernel_release == "6.12.117+deb12-amd64" and "console=ttyS0" in env.kernel_cmdline
    assert env.backend == "kernel" and len(env.devices) == 2
    for dev in env.devices:
        assert (dev.driver, dev.module, dev.version) == ("mtty", "mtty", "0.1"), dev
        assert re.fullmatch(r"[0-9A-F]{23}", dev.srcversion), dev
        assert dev.iommu_mode == "type1 container" and dev.firmware == NOT_EXPOSED
        assert dev.pci_identity == "mdev type mtty-2 on mtty"
    assert meta["firmware"] == NOT_EXPOSED
    (junit,) = (tmp_path / "runs").glob("lab-*/junit.xml")
    (suite,) = ET.parse(junit).getroot().findall("testsuite")
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert suite.get("name") == "mtty" and suite.get("tests") == "9" and suite.get("failures") == "0"
    assert props["device.0.srcversion"] == env.devices[0].srcversion
    assert props["kernel.release"] == env.kernel_release
    test = kunit_tools.parse((run.run_dir / "reports" / "lab.ktap").read_text())
    assert test.counts.errors == 0 and (test.counts.passed, test.counts.failed) == (9, 0)
    assert [t.name for t in test.subtests] == ["mtty"]
