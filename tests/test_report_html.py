"""The HTML report: self-contained, one heat-map cell per arc, failures with their rule, fast."""
import re
import time

from vfio_conform.report import sample
from vfio_conform.cli.report import main
from vfio_conform.report.html import render_report
from vfio_conform.report.runs import load, resolve
from vfio_conform.results import ResultStore


def _store(tmp_path):
    return ResultStore(tmp_path / "r.sqlite")


def test_report_shows_matrix_identity_failures_and_stale_waivers(tmp_path):
    store = _store(tmp_path)
    run = sample.write_run(store, "sim-p2p", sample.demo_outcomes("sim-p2p"), kernel="6.12.0-rc1")
    page = render_report(load(store, resolve(store, str(run))))
    cells = re.findall(r'<td class="cell o-([a-z-]+)" data-from="([A-Z_0-9()]+)" data-to="([A-Z_0-9()]+)"',
                       page)
    assert len(cells) == 7 * 9
    assert ("fail", "RUNNING", "STOP_COPY") in cells and ("gated", "RUNNING_P2P", "STOP_COPY") in cells
    assert ("waiver-stale", "STOP", "STOP") in cells and ("known-issue", "RESUMING", "ERROR") in cells
    for text in ("6.12.0-rc1", "0123456789ab", "harness version", "firmware", "fsm.legal-arc",
                 "A SET to a state the device supports", "Waivers that can be removed",
                 "https://bugs.example/77", "expected errno 0, got EINVAL", "<td>data</td>"):
        assert text in page, text
    assert "<script" not in page and not re.search(r'(src|href)="(https?:)?//', page)


def test_report_of_1000_rows_renders_well_under_a_second(tmp_path):
    store = _store(tmp_path)
    run = sample.write_run(store, "big", repeat=240)
    data = load(store, resolve(store, str(run)))
    assert len(data[0].rows) > 1000
    t0 = time.perf_counter()
    page = render_report(data)
    assert time.perf_counter() - t0 < 0.5 and "All 1023 tests" in page


def test_cli_report_latest_covers_every_profile_of_the_session(tmp_path, capsys):
    store = _store(tmp_path)
    sample.write_run(store, "sim-p2p", session="S1")
    sample.write_run(store, "sim-precopy", session="S1")
    store.close()
    out = tmp_path / "rep.html"
    assert main(["report", "--store", str(tmp_path / "r.sqlite"), "--out", str(out)]) == 0
    page = out.read_text()
    assert 'data-profile="sim-p2p"' in page and 'data-profile="sim-precopy"' in page
    assert main(["report", "99", "--store", str(tmp_path / "r.sqlite")]) == 2
    assert main(["report", "--store", str(tmp_path / "none.sqlite")]) == 2
