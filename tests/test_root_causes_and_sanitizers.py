"""Sanitizer reports in a server's output, root causes beside tests, and `should` rules that never fail."""
import pytest

from vfio_conform.device.sanitizers import ServerLogFile, find_reports
from vfio_conform.base.errors import SpecViolation, UapiError
from vfio_conform.plugin import classify
from vfio_conform.results import Outcome, TestRecord, rootcause

UBSAN = """server[7]: msg0x12: cmd 16 failed: Invalid argument
../src/lib/migration.c:276:40: runtime error: index 8 out of bounds for type 'uint32_t [8]'
    #0 0x7fab81359d34 in migration_set_state ../src/lib/migration.c:276
    #1 0x7fab8134aee6 in handle_migration_device_feature_set ../src/lib/libvfio-user.c:1020
server[7]: msg0x13: cmd 16 failed: Invalid argument
"""
ASAN = """=================================================================
==4242==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x602000000018 at pc 0x1 bp 0x2 sp 0x3
READ of size 4 at 0x602000000018 thread T0
    #0 0x55 in dma_controller_dirty_page_get ../src/lib/dma.c:720
SUMMARY: AddressSanitizer: heap-buffer-overflow ../src/lib/dma.c:720 in dma_controller_dirty_page_get
==4242==ABORTING
"""


def test_find_reports_cuts_ubsan_and_asan_reports():
    reports = find_reports(UBSAN + ASAN)
    assert [r.kind for r in reports] == ["UndefinedBehaviorSanitizer", "AddressSanitizer"]
    assert reports[0].headline == ("index 8 out of bounds for type 'uint32_t [8]' at "
                                   "../src/lib/migration.c:276:40")
    assert len(reports[0].lines) == 3 and "migration_set_state" in reports[0].excerpt()
    assert reports[1].headline.startswith("heap-buffer-overflow")
    assert reports[1].lines[-1].startswith("SUMMARY: AddressSanitizer")
    assert find_reports("server[7]: failed to arm timer: Invalid argument\n") == []


def test_server_log_file_reads_only_what_is_new(tmp_path):
    log = tmp_path / "s.sock.log"
    log.write_text("old report: ../a.c:1:1: runtime error: x\n")
    with pytest.raises(FileNotFoundError):
        ServerLogFile(str(tmp_path / "none.log"))
    watch = ServerLogFile(str(log))
    assert watch.read_new() == ""
    with open(log, "a") as f:
        f.write(UBSAN)
    assert len(find_reports(watch.read_new())) == 1 and watch.read_new() == ""
    log.write_text("x\n")                         # a new server truncated the log: read from its start
    assert watch.read_new() == "x\n"


def _row(outcome, rule, message):
    return {"outcome": outcome, "rule": rule, "message": message}


def test_root_cause_key_groups_a_failure_and_its_teardown_repeats():
    arc = ("vfio_conform.base.errors.SpecViolation: [fsm.legal-arc] on vfio-user:/s.sock: SET MIG_DEVICE_STATE "
           "RUNNING from STOP_COPY: the device closed its connection instead of answering (vfio-user /s.sock: "
           "VFIO_USER_DEVICE_FEATURE: server closed the socket (0 of 16 bytes))")
    again = arc.replace("(0 of 16", "(3 of 16") + "; recovered by connecting again"
    other = arc.replace("from STOP_COPY", "from STOP")
    key = rootcause.key("fsm.legal-arc", arc)
    assert key == rootcause.key("fsm.legal-arc", again) != rootcause.key("fsm.legal-arc", other)
    assert key == ("fsm.legal-arc | vfio-user:/s.sock | SET MIG_DEVICE_STATE RUNNING from STOP_COPY: the "
                   "device closed its connection instead of answering")
    rows = [_row("fail", "fsm.legal-arc", arc), _row("fail", "fsm.legal-arc", again),
            _row("fail", "fsm.legal-arc", other), _row("pass", "x.y", f"{rootcause.SPOILED}{key} (first "
                                                                       "reported by t1)"),
            _row("pass", "x.y", ""), _row("not-supported", "x.y", "why")]
    causes = rootcause.count(rows)
    assert [(c.failed, c.spoiled) for c in causes] == [(2, 1), (1, 0)]
    rec = TestRecord(nodeid="n", test_id="t", outcome=Outcome.FAIL, duration=0, message=other,
                     rule="fsm.legal-arc")
    assert rootcause.count([rec])[0].key == rootcause.key("fsm.legal-arc", other)


class _Exc:
    def __init__(self, value):
        self.value = value


def test_a_should_only_test_never_fails_whatever_it_raised():
    # an errno the test did not attribute: a failure of the first `must` rule it checks ...
    assert classify.unattributed_rule(["precopy.initial-bytes-decrease", "walk.model-agreement"]) == \
        ("walk.model-agreement", False)
    # ... or, when it checks only `should` rules, a 'should not met' on a passing test
    rule, should_only = classify.unattributed_rule(["precopy.initial-bytes-decrease"])
    assert (rule, should_only) == ("precopy.initial-bytes-decrease", True)
    finding = classify.should_finding(rule, _Exc(UapiError(25, "VFIO_MIG_GET_PRECOPY_INFO")))
    assert isinstance(finding, SpecViolation) and finding.rule_id == rule and "ENOTTY" in finding.message
    # a SpecViolation of a `should` rule is raised only when the profile made it binding: a fail
    outcome, found = classify.failure_outcome(_Exc(SpecViolation("precopy.enomsg-at-temporary-end", "m")), "call")
    assert (outcome, found) == (Outcome.FAIL, "precopy.enomsg-at-temporary-end")


def test_consumer_lines_on_vfio_user_say_the_path_and_that_qemu_cannot_migrate():
    from vfio_conform.report import consumers
    rows = [{"test_id": "test_consumer_qemu_source[p]", "outcome": "not-supported", "rule": "",
             "message": "not-supported: MIG_DATA_SIZE (feature 9) is not a vfio-user feature: ...",
             "devices": "vfio-user:/s.sock,vfio-user:/d.sock"},
            {"test_id": "test_consumer_ch_snapshot[p]", "outcome": "pass", "rule": "", "message": "",
             "devices": "vfio-user:/s.sock,vfio-user:/d.sock"}]
    note = consumers.path_note(rows)
    assert "QEMU's kernel VFIO path" in note and "cloud-hypervisor's kernel VFIO path" in note
    assert "QEMU cannot migrate this device today" in note
    assert "cannot migrate" in consumers.render_html(rows)
    assert "cloud-hypervisor cannot migrate it" in note and "drop this device's state" in note
    kernel = [dict(r, devices="/dev/vfio/devices/vfio0") for r in rows]
    kernel_note = consumers.path_note(kernel)
    assert "QEMU migrates a kernel VFIO device" in kernel_note and "cannot" not in kernel_note
    assert "cloud-hypervisor migrates it" in kernel_note
    assert consumers.path_note([{"test_id": "test_x", "outcome": "pass"}]) == ""
