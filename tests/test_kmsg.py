"""Kernel warnings fail the test: the kernel log parser, /dev/kmsg from a saved position, the sim's
warning knob caught on exactly the tests whose SET walks its arc, with the excerpt."""
import os

import pytest

from suite_runner import run_suites, write_profile
from vfio_conform.backends.kernel.backend import KernelBackend
from vfio_conform.device.kmsg import DevKmsg, KmsgRecord, find_warnings, new_taint, parse_record
from vfio_conform.model.fsm import supported_states
from vfio_conform.model.plan import plan
from vfio_conform.targets.requirements import ARC_TARGETS
from vfio_conform.plugin.kmsg import describe
from vfio_conform.uapi.enums import MigState

# A WARN as 6.12 prints it (mtty built to warn on one arc), with a line of someone else before it.
WARN_612 = """\
usb 1-1: new high-speed USB device number 2 using xhci_hcd
------------[ cut here ]------------
mtty_warn: injected warning on arc 5 -> 6
WARNING: CPU: 0 PID: 4242 at /tmp/modules/mtty_warn.c:812 mtty_step_state+0x2d1/0x3a0 [mtty_warn]
Modules linked in: mtty_warn(OE) mdev vfio_iommu_type1 vfio iommufd
CPU: 0 UID: 0 PID: 4242 Comm: python3 Tainted: G           OE      6.12.117+deb12-amd64 #1  Debian 6.12.117-1
RIP: 0010:mtty_step_state+0x2d1/0x3a0 [mtty_warn]
Call Trace:
 <TASK>
 mtty_set_state+0x6c/0x100 [mtty_warn]
 vfio_ioctl_device_feature_mig_device_state+0xa1/0x130 [vfio]
 </TASK>
---[ end trace 0000000000000000 ]---
mtty_warn: unrelated line after the trace"""

LOCKDEP = """\

======================================================
WARNING: possible circular locking dependency detected
6.12.0 #1 Not tainted
------------------------------------------------------
python3/77 is trying to acquire lock:"""

REFCOUNT = """\
------------[ cut here ]------------
refcount_t: underflow; use-after-free.
WARNING: CPU: 1 PID: 4242 at lib/refcount.c:28 refcount_warn_saturate+0xba/0x110"""


def _records(text: str) -> list[KmsgRecord]:
    return [KmsgRecord(4, i, i, line) for i, line in enumerate(text.split("\n"))]


def test_record_format():
    rec = parse_record(b"4,1234,5678901,-,caller=T42;WARNING: CPU: 0 PID: 1 at x\n SUBSYSTEM=pci\n")
    assert rec == KmsgRecord(4, 1234, 5678901, "WARNING: CPU: 0 PID: 1 at x")
    assert parse_record(b"no header here") is None and parse_record(b"a,b,c;text") is None


def test_a_warn_is_one_splat_with_its_trace_and_task():
    (warn,) = find_warnings(_records(WARN_612))
    assert warn.kind == "WARN" and warn.pid == 4242
    assert warn.headline == "mtty_warn: injected warning on arc 5 -> 6"
    assert warn.lines[0].startswith("------------[ cut here ]") and warn.lines[-1].startswith("---[ end trace")
    assert " mtty_set_state+0x6c/0x100 [mtty_warn]" in warn.lines and not any("usb" in ln for ln in warn.lines)


def test_kinds_and_other_processes():
    assert [w.kind for w in find_warnings(_records(LOCKDEP))] == ["lockdep"]
    assert [w.kind for w in find_warnings(_records(REFCOUNT))] == ["refcount"]
    assert [w.kind for w in find_warnings(_records("BUG: kernel NULL pointer dereference, address: 0"))] == ["BUG"]
    assert [w.kind for w in find_warnings(_records("Oops: general protection fault, probably ..."))] == ["oops"]
    assert find_warnings(_records("mtty: device reset\nvfio-pci 0000:00:03.0: enabling device")) == []
    assert find_warnings(_records(WARN_612), pid=4242) and not find_warnings(_records(WARN_612), pid=1)
    assert find_warnings(_records(LOCKDEP), pid=1)       # names no PID line: kept


def test_new_taint_names_the_flags_a_driver_sets():
    assert new_taint(0, 1 << 9) == "W (bit 9)"
    assert new_taint(1 << 9, 1 << 9) == "" and new_taint(None, 512) == ""
    assert new_taint(0, (1 << 12) | (1 << 13)) == ""     # out-of-tree, unsigned module loaded
    message, excerpt = describe(find_warnings(_records(WARN_612)), "W (bit 9)")
    assert message.startswith("the kernel logged 1 warning(s) during the test: WARN: mtty_warn: injected")
    assert "new taint flags W (bit 9)" in message and excerpt in message
    assert "(in the trace: mtty_warn, vfio)" in message      # not the "Modules linked in" list


@pytest.mark.skipif(not os.access("/dev/kmsg", os.R_OK | os.W_OK), reason="needs root: /dev/kmsg")
def test_dev_kmsg_reads_from_the_saved_position():
    """Open at the end; records logged later (by this process) are read, older ones never are."""
    log = DevKmsg()
    try:
        assert not find_warnings(log.read_new(), pid=os.getpid())
        marker = f"vfio-conform test {os.getpid()}"
        with open("/dev/kmsg", "w") as kmsg:         # a fake splat naming this process only
            for line in ("------------[ cut here ]------------", f"{marker}: injected",
                         f"WARNING: CPU: 0 PID: {os.getpid()} at test_kmsg.py:1 test+0x0/0x0"):
                kmsg.write(f"<7>{line}\n")
                kmsg.flush()
        (warn,) = find_warnings(log.read_new(), pid=os.getpid())
        assert warn.headline == f"{marker}: injected"
        assert log.read_new() == [] and isinstance(log.tainted(), int)
    finally:
        log.close()


def test_kernel_backend_reads_dev_kmsg_and_says_why_not(tmp_path):
    with pytest.raises(FileNotFoundError):
        KernelBackend(dev_root=tmp_path).kernel_log()


def _arcs_through(arc: str, flags: int) -> set[str]:
    out = set()
    for cur in supported_states(flags):
        for target in ARC_TARGETS:
            route = plan(cur, target, flags)
            path = (cur, *(route.path or ()))
            if arc in {f"{a.name}->{b.name}" for a, b in zip(path, path[1:])}:
                out.add(f"{cur.name}->{MigState.label(target)}")
    return out


def test_a_warning_fails_exactly_the_tests_that_walk_the_arc(tmp_path):
    """The sim warns on one arc: the arc tests whose SET walks it fail under kernel.no-warnings with
    the excerpt; every other arc test passes; without the knob nothing fails."""
    arc = "PRE_COPY_P2P->PRE_COPY"
    profile = write_profile(tmp_path, "sim-p2p-precopy", "warns", faults=[{"name": "warn_on_arc", "arc": arc}])
    code, rows, out = run_suites(profile, tmp_path, "-k", "test_arc", areas=("fsm",))
    failed = {r["test_id"].split(":", 1)[1].rstrip("]") for r in rows if r["outcome"] == "fail"}
    assert code == 1 and failed == _arcs_through(arc, 7) and failed, (failed, out[-2000:])
    for r in rows:
        if r["outcome"] == "fail":
            assert r["rule"] == "kernel.no-warnings" and "[kernel.no-warnings]" in r["message"]
            assert f"sim: {arc} (injected warning)" in r["message"] and "---[ end trace" in r["message"]
    assert {r["outcome"] for r in rows if r["outcome"] != "fail"} <= {"pass", "not-supported"}
    clean = write_profile(tmp_path, "sim-p2p-precopy", "clean")
    code, rows, out = run_suites(clean, tmp_path, "-k", "test_arc", areas=("fsm",))
    assert code == 0 and not [r for r in rows if r["outcome"] == "fail"], out[-2000:]


def test_unreadable_log_is_not_checked_and_says_why(monkeypatch):
    from vfio_conform.plugin import kmsg as plugin

    class Locked:
        def kernel_log(self):
            raise PermissionError(13, "Permission denied", "/dev/kmsg")
    monkeypatch.setattr(plugin.registry, "get", lambda name: Locked())
    watch = plugin.KernelLogWatch()
    assert watch._source("kernel") is None
    lines = []
    watch.pytest_terminal_summary(type("T", (), {"write_line": lambda self, s: lines.append(s)})())
    assert lines == ["vfio-conform: kernel log of backend 'kernel' not checked: /dev/kmsg: Permission denied"]
