"""Function Level Reset through config space: found from the PCI Express capability, started with
Device Control bit 15; the sim offers it where its profile says so; both knobs are caught."""
import errno

import pytest

from suite_runner import run_suites, write_profile
from vfio_conform.backends.registry import open_device
from vfio_conform.profile import find_profile
from vfio_conform.suitelib.flr import flr_capability, initiate_flr
from vfio_conform.uapi.enums import MigState


def _device(name, **sim):
    profile = find_profile(name)
    if sim:
        import dataclasses
        config = dict(profile.backend_config.get("sim") or {}, **sim)
        profile = dataclasses.replace(profile, backend_config={**profile.backend_config, "sim": config})
    return open_device(profile, profile.devices[0], "source")


def test_sim_offers_flr_only_where_its_profile_declares_it():
    with_flr, without = _device("sim-p2p-precopy"), _device("sim-stop-copy")
    try:
        cap, why = flr_capability(with_flr)
        assert cap == 0x40 and why == ""
        cap, why = flr_capability(without)
        assert cap is None and why == "no Function Level Reset: its config space has no capability list (Status bit 4 clear)"
    finally:
        with_flr.close(), without.close()


def test_flr_resets_the_sim_function_and_the_bit_reads_back_zero():
    dev = _device("sim-p2p-precopy")
    try:
        fd = dev.set_state(MigState.STOP_COPY)
        cap, _ = flr_capability(dev)
        assert initiate_flr(dev, cap) == 0
        assert dev.get_state() == MigState.RUNNING
        assert fd is not None and fd.try_read(16)[0] == errno.ENODEV
        assert int.from_bytes(dev.region_read(7, cap + 8, 2), "little") & 0x8000 == 0
    finally:
        dev.close()


def test_no_flr_without_pcie_capability_or_devcap_bit(monkeypatch):
    dev = _device("sim-p2p-precopy")
    try:
        real = dev.try_region_read

        def without_flr(index, offset, size, info=None):
            code, data = real(index, offset, size, info)
            if index == 7 and offset == 0x44:
                data = (int.from_bytes(data, "little") & ~(1 << 28)).to_bytes(size, "little")
            return code, data
        monkeypatch.setattr(dev, "try_region_read", without_flr)
        cap, why = flr_capability(dev)
        assert cap is None and "Device Capabilities do not offer it (bit 28 clear" in why
    finally:
        dev.close()


@pytest.mark.parametrize("knob", ["flr_keeps_state", "flr_keeps_session"])
def test_flr_knobs_are_caught(tmp_path, knob):
    profile = write_profile(tmp_path, "sim-p2p-precopy", f"flr-{knob.replace('_', '-')}", faults=[{"name": knob}])
    code, rows, out = run_suites(profile, tmp_path, areas=("consumers/test_flr.py",))
    failed = [r for r in rows if r["outcome"] == "fail"]
    assert code == 1 and failed and all(r["rule"] == "reset.flr-running" for r in failed), out[-2000:]
    clean = write_profile(tmp_path, "sim-p2p-precopy", "flr-clean")
    code, rows, out = run_suites(clean, tmp_path, areas=("consumers/test_flr.py",))
    assert code == 0 and {r["outcome"] for r in rows} == {"pass"}, out[-2000:]
