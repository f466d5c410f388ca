"""Per-consumer verdicts from a run's results (report/consumers.py), the HTML block and the run lines."""
from vfio_conform.report import consumers
from vfio_conform.report.html import render_report
from vfio_conform.report.runs import RunData


def _row(test_id, outcome, rule="", message=""):
    return {"test_id": test_id, "outcome": outcome, "rule": rule, "message": message,
            "nodeid": f"suites/consumers/test_x.py::{test_id}", "duration": 0.1, "link": ""}


ROWS = [
    _row("test_consumer_qemu_source[mtty]", "pass"),
    _row("test_consumer_qemu_source_abort[mtty-setup]", "pass"),
    _row("test_consumer_qemu_source_precopy_info[mtty]", "fail", "consumer.qemu-initial-data-sent", "x"),
    _row("test_consumer_qemu_destination[mtty-in-resuming]", "pass"),
    _row("test_consumer_ch_live_migration[mtty]", "not-supported", "dma.consumer-cycle",
         "not-supported: DMA_LOGGING_REPORT gives EOPNOTSUPP (no CONFIG_IOMMUFD_DRIVER): so no live migration"),
    _row("test_consumer_ch_recovery[mtty]", "not-supported", "", "not-supported: no RESET flag"),
    _row("test_consumer_hygiene_feature_probe[mtty]", "pass"),
    _row("test_arc[mtty:STOP->RUNNING]", "pass"),
    _row("consumer.qemu-destination:real-qemu[mtty]", "fail", "", "ram_save_setup failed"),
]


def test_verdicts_group_by_consumer_and_take_the_worst():
    got = {v.consumer.id: v for v in consumers.verdicts(ROWS)}
    assert got["qemu-source"].outcome == "fail"
    assert got["qemu-source"].notes == ("consumer.qemu-initial-data-sent",)
    assert got["qemu-source"].counts == {"pass": 2, "fail": 1}
    assert got["qemu-destination"].outcome == "fail"          # a real-QEMU lane row under the same name
    assert got["ch-live-migration"].outcome == "not-supported"
    assert "EOPNOTSUPP" in got["ch-live-migration"].notes[0]
    assert got["hygiene"].outcome == "pass"
    assert "ch-snapshot" not in got and len(got) == 5


def test_summary_line_names_each_consumer():
    line = consumers.summary_line(ROWS)
    assert line.startswith("QEMU source: fail (consumer.qemu-initial-data-sent), QEMU destination: fail")
    assert ("cloud-hypervisor live migration: not-supported (DMA_LOGGING_REPORT gives EOPNOTSUPP "
            "(no CONFIG_IOMMUFD_DRIVER))") in line
    assert line.endswith("uAPI hygiene (both): pass")
    assert consumers.summary_line([_row("test_arc[x]", "pass")]) == ""


def test_same_reason_neighbours_share_an_entry():
    rows = [_row(f"test_consumer_{t}[p]", "not-supported", "", "not-supported: protocol v1")
            for t in ("qemu_source", "qemu_destination")] + [_row("test_consumer_hygiene_x[p]", "pass")]
    assert consumers.summary_line(rows) == ("QEMU source, QEMU destination: not-supported (protocol v1), "
                                            "uAPI hygiene (both): pass")


def test_html_report_shows_the_consumer_block():
    run = RunData({"id": 1, "profile": "mtty", "driver": "mtty"}, ROWS)
    page = render_report([run])
    assert "<h3>Consumers</h3>" in page and "cloud-hypervisor live migration" in page
    assert "<h3>Consumers</h3>" not in render_report([RunData({"id": 2, "profile": "x"}, [_row("test_arc[x]", "pass")])])


def test_run_lines_only_for_new_runs():
    class Store:
        def runs(self, limit):
            return [{"id": 3, "profile": "mtty"}, {"id": 2, "profile": "old"}]

        def results(self, run_id):
            return ROWS if run_id == 3 else []
    out = []
    consumers.print_run_lines(Store(), 2, out.append)
    assert len(out) == 2 and out[0].startswith("consumers [mtty, run #3]: QEMU source: fail")
    # the second line: the paths modelled, and that both consumers can migrate a kernel VFIO device
    assert out[1].startswith("consumers [mtty, run #3]: (models ") and "QEMU migrates" in out[1]


def test_vfio_conform_run_prints_the_per_consumer_line(tmp_path):
    import subprocess
    import sys

    from suite_runner import ROOT
    proc = subprocess.run([sys.executable, "-m", "vfio_conform", "run", "--profile", "sim-stop-copy",
                           "--reports", str(tmp_path), "-q", "--", "-k",
                           "consumer_ch_snapshot or consumer_qemu_source"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "consumers [sim-stop-copy, run #1]: QEMU source: pass, cloud-hypervisor snapshot: pass" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "vfio_conform", "run", "--profile", "sim-stop-copy",
                           "--no-store", "--reports", str(tmp_path), "-q", "--", "-k", "consumer_ch_snapshot"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0 and "consumers [" not in proc.stdout


def test_short_reason_keeps_parentheses_whole():
    text = "not-supported: profile p declares source and destination with different layouts (x: different)"
    rows = [_row("test_consumer_ch_snapshot[p]", "not-supported", "", text)]
    assert consumers.summary_line(rows).endswith("different layouts (x: different))")
