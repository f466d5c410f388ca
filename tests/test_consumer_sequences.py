"""The consumer sequence models themselves (vfio_conform/suitelib/consumers.py) on the sim: QEMU's cached
state and buffer size, and the ERROR hazard gate in cloud-hypervisor's recovery."""
import dataclasses
import sys

import pytest

from suite_runner import ROOT
from vfio_conform.backends.registry import open_device
from vfio_conform.profile import find_profile
from vfio_conform.profile.schema import HazardGate
from vfio_conform.uapi.enums import MigState

sys.path.insert(0, str(ROOT))
from vfio_conform.suitelib.consumers import CloudHypervisor, Qemu  # noqa: E402

S = MigState


def _device(base="sim-p2p-precopy", faults=(), hazards=None):
    profile = find_profile(base)
    profile = dataclasses.replace(profile, backend_config={"sim": dict(profile.backend_config["sim"], faults=list(faults))})
    if hazards is not None:
        profile = dataclasses.replace(profile, hazards=hazards)
    return open_device(profile, "sim0"), profile


def test_qemu_buffer_is_min_of_1mib_and_data_size_and_skips_cached_sets():
    dev, profile = _device()
    q = Qemu(dev, profile)
    q.realize()
    q.save_setup()
    assert q.bufsize == min(1 << 20, dev.transport.device.layout.stream_len)
    assert q.state is S.PRE_COPY and q.fd is not None
    q.set(S.PRE_COPY)
    assert q.log[-1] == "(cached PRE_COPY: no SET)"
    dev.close()


def _ch_in_error(hazards):
    dev, profile = _device(faults=[{"name": "reset_error_sticky"}], hazards=hazards)
    ch = CloudHypervisor(dev, profile, "6.12.117+deb12-amd64")
    assert ch.transition(S.RESUMING, None) == 0
    ch.fd.try_write(b"\0" * 100)                   # not a stream: RESUMING -> STOP fails
    code = ch.transition(S.STOP, S.RESUMING)
    return dev, ch, code


def test_recover_set_from_error_is_skipped_unless_the_kernel_is_cleared():
    dev, ch, code = _ch_in_error(hazards=())
    assert code != 0
    assert any(line.startswith("SET from ERROR skipped") for line in ch.log), ch.log
    assert sum(line.startswith("SET RESUMING from") for line in ch.log) == 1, ch.log   # only the first
    assert "VFIO_DEVICE_RESET: OK" in ch.log, ch.log
    dev.close()


@pytest.mark.parametrize("safe_on", [("*",), (">=6.12.0",)])
def test_recover_set_from_error_runs_where_the_profile_clears_it(safe_on):
    dev, ch, code = _ch_in_error(hazards=(HazardGate("set-from-error-warn", safe_on),))
    assert code != 0
    assert not any(line.startswith("SET from ERROR skipped") for line in ch.log), ch.log
    assert sum(line.startswith("SET RESUMING from") for line in ch.log) == 2, ch.log   # the recover SET
    dev.close()
