"""The report renders in a real browser: headless Chromium shows the verdict banner, the failures
grouped by rule, the matrix cells in their colours (refused arcs with their own glyph) and no secret.

`VC_UPDATE_SCREENSHOT=1 python3 -m pytest tests/test_report_browser.py` refreshes docs/report-matrix.png."""
import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import pytest

from vfio_conform.report import sample
from vfio_conform.report.html import render_report
from vfio_conform.report.runs import load, resolve
from vfio_conform.results import ResultStore

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("VC_REQUIRE_REPORT_DEPS"),
                                reason="chromium not installed (scripts/install-report-deps.sh)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]


def chromium(*args: str) -> subprocess.CompletedProcess:
    """Run headless Chromium with a throwaway profile directory."""
    assert CHROMIUM, "chromium not installed: run scripts/install-report-deps.sh"
    with tempfile.TemporaryDirectory(prefix="vc-chromium-") as profile:
        return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=90)


def read_png(path: Path) -> tuple[int, int, int, bytes]:
    """(width, height, bytes per pixel, raw unfiltered pixels) of an 8-bit RGB/RGBA PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6), (depth, color)
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride = zlib.decompress(idat), width * bpp
    out, prev = bytearray(), bytearray(stride)
    for y in range(height):
        ftype, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out += line
        prev = line
    return width, height, bpp, bytes(out)


SECRET = "s3cr3t-pw"
#: A run recorded by an older harness: the internal pytest command, its store URL with a password.
ARGV = ("/home/alice/vfio-conform/vfio_conform/suites --rootdir /home/alice/vfio-conform/vfio_conform "
        "--vc-profile sim-p2p --vc-store "
        f"postgresql://vc:{SECRET}@labdb.example/vfio -n 2 --dist loadgroup -q")


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("browser")
    store = ResultStore(tmp / "r.sqlite")
    run = sample.write_run(store, "sim-p2p", sample.demo_outcomes("sim-p2p"), argv=ARGV, session="S")
    sample.write_run(store, "vendor-x", {}, session="S")
    assert run == 1
    page = tmp / "report.html"
    page.write_text(render_report(load(store, resolve(store, "S"))), encoding="utf-8")
    return page


def test_verdicts_grouped_failures_refused_glyph_and_no_secret_in_the_dom(report_html):
    proc = chromium("--dump-dom", report_html.as_uri())
    dom = proc.stdout
    assert proc.returncode == 0 and "</html>" in dom, proc.stderr[-2000:]
    body = dom[dom.index("<body"):]
    assert body.index('data-verdict="NON-CONFORMANT" data-profile="sim-p2p"') < body.index('class="summary"')
    assert 'data-verdict="CONFORMANT" data-profile="vendor-x"' in body
    by_rule = body[body.index('class="by-rule"'):body.index("Failures (3)")]
    for text in ("fsm.legal-arc", "stream.stop-copy-eof", "include/uapi/linux/vfio.h"):
        assert text in by_rule, text
    assert 'data-from="RUNNING" data-to="ERROR" data-outcome="pass-refused"' in body
    assert re.search(r'data-to="ERROR" data-outcome="pass-refused" title="[^"]*">⊘</td>', body)
    assert SECRET not in dom and "/home/alice" not in dom and "postgresql://***@labdb.example/vfio" in dom


def test_matrix_cells_are_in_the_rendered_dom(report_html):
    proc = chromium("--dump-dom", report_html.as_uri())
    dom = proc.stdout
    assert proc.returncode == 0 and "</html>" in dom, proc.stderr[-2000:]
    assert dom.count('class="cell o-') == 2 * 7 * 9      # sim-p2p's and vendor-x's grids
    assert 'data-from="RUNNING" data-to="STOP_COPY" data-outcome="fail"' in dom


def test_screenshot_shows_the_coloured_matrix(report_html, tmp_path):
    shot = tmp_path / "report.png"
    proc = chromium(f"--screenshot={shot}", "--window-size=1000,1500", report_html.as_uri())
    assert shot.exists(), proc.stderr[-2000:]
    width, height, bpp, px = read_png(shot)
    assert (width, height) == (1000, 1500)
    colours: dict[tuple[int, int, int], int] = {}
    for i in range(0, len(px), bpp * 3):     # every third pixel is plenty
        rgb = (px[i], px[i + 1], px[i + 2])
        colours[rgb] = colours.get(rgb, 0) + 1
    pass_green, fail_red, refused = (0x2E, 0x9D, 0x4F), (0xD3, 0x30, 0x2F), (0x1F, 0x7A, 0x74)
    banner_red = (0xB3, 0x26, 0x1E)
    assert len(colours) > 20, "blank screenshot"
    assert colours.get(pass_green, 0) > 2000, "pass cells not drawn"
    assert colours.get(fail_red, 0) > 300, "fail cells not drawn"
    assert colours.get(refused, 0) > 1000, "refused cells not drawn in their own colour"
    assert colours.get(banner_red, 0) > 3000, "NON-CONFORMANT banner not drawn"
    if os.environ.get("VC_UPDATE_SCREENSHOT"):
        shutil.copy(shot, Path(__file__).resolve().parents[1] / "docs" / "report-matrix.png")
