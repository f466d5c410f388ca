"""DMA dirty logging (features 6/7/8): the core's argument checks, REPORT bitmap semantics, the page
size hint, REPORT of a range inside a logged one, and (vfio-user) a DMA_MAP that wraps past 2^64."""
import errno
import mmap
import os

import pytest

from vfio_conform.api import dma, expect, expect_errno, MESSAGES, not_supported, registry

pytestmark = pytest.mark.vc_requires("dma_logging")
IOVA, PAGE = 0x10_0000, 4096
_BIG = (1 << 64) - PAGE

START_CASES = {
    "no-ranges": ([], errno.EINVAL),
    "too-many-ranges": ([(IOVA + 2 * PAGE * i, PAGE) for i in range(mmap.PAGESIZE // 16 + 1)], errno.E2BIG),
    "unaligned-iova": ([(IOVA + 512, PAGE)], errno.EINVAL),
    "unaligned-length": ([(IOVA, PAGE + 512)], errno.EINVAL),
    "overflow": ([(_BIG, 2 * PAGE)], errno.EOVERFLOW),
    "overlapping": ([(IOVA, 4 * PAGE), (IOVA + 2 * PAGE, 4 * PAGE)], errno.EINVAL),
}


@pytest.fixture
def logging_off(device):
    dma.stop(device)
    yield device
    dma.stop(device)


@pytest.mark.vc_spec("dma.start-args")
@pytest.mark.parametrize("case", sorted(START_CASES))
def test_dma_start_rejects_bad_arguments(logging_off, profile, case):
    ranges, want = START_CASES[case]
    code, _ = dma.start(logging_off, ranges, PAGE)
    expect_errno(code, want, "dma.start-args", f"DMA_LOGGING_START ({case})", logging_off)


@pytest.mark.vc_spec("dma.report-page-size", "dma.start-valid")
@pytest.mark.parametrize("page_size", [0, 512, 4095, 6144])
def test_dma_report_rejects_bad_page_size(logging_off, profile, page_size):
    if page_size == 512 and registry.get(profile.backend).transport == MESSAGES:
        not_supported("a power-of-two page_size below 4096 is refused by the kernel's VFIO core; the "
                      "vfio-user specification requires only a power of two (DMA_LOGGING_REPORT)")
    code, _ = dma.start(logging_off, [(IOVA, 16 * PAGE)], PAGE)
    expect_errno(code, 0, "dma.start-valid", "DMA_LOGGING_START of one aligned range", logging_off)
    code, _, _ = dma.report(logging_off, IOVA, 16 * PAGE, page_size)
    expect_errno(code, errno.EINVAL, "dma.report-page-size", f"DMA_LOGGING_REPORT page_size {page_size}",
                 logging_off)


@pytest.mark.vc_spec("dma.start-once", "dma.start-valid")
def test_dma_start_twice_fails(logging_off, profile):
    code, granule = dma.start(logging_off, [(IOVA, 16 * PAGE)], PAGE)
    expect_errno(code, 0, "dma.start-valid", "first DMA_LOGGING_START", logging_off)
    code, _ = dma.start(logging_off, [(IOVA, 16 * PAGE)], PAGE)
    expect(code != 0, "dma.start-once", "a second DMA_LOGGING_START without STOP succeeded", logging_off)


@pytest.mark.vc_spec("dma.report-needs-start")
def test_dma_report_without_start_fails(logging_off, profile):
    code, _, _ = dma.report(logging_off, IOVA, 16 * PAGE, PAGE)
    expect(code != 0, "dma.report-needs-start", "DMA_LOGGING_REPORT without START succeeded", logging_off)


@pytest.mark.vc_spec("dma.report-only-sets-bits", "dma.start-valid")
@pytest.mark.parametrize("fill", [0x00, 0xA5])
def test_dma_report_only_sets_bits(logging_off, profile, fill):
    """Pre-set bits stay set, nothing past length/page_size bits, guard bytes untouched."""
    pages = 60
    code, granule = dma.start(logging_off, [(IOVA, 64 * PAGE)], PAGE)
    expect_errno(code, 0, "dma.start-valid", "DMA_LOGGING_START of 64 pages", logging_off)
    code, bitmap, guard = dma.report(logging_off, IOVA, pages * PAGE, PAGE, fill=fill)
    if code == errno.EOPNOTSUPP:
        # include/linux/iova_bitmap.h: without CONFIG_IOMMUFD_DRIVER the core's iova_bitmap_alloc()
        # is a stub returning -EOPNOTSUPP, so no driver can REPORT on such a kernel (Debian 6.12).
        not_supported("DMA_LOGGING_REPORT gives EOPNOTSUPP: this kernel is built "
                    "without CONFIG_IOMMUFD_DRIVER (iova_bitmap stub)")
    expect_errno(code, 0, "dma.report-only-sets-bits", "DMA_LOGGING_REPORT of 60 pages", logging_off)
    cleared = [i for i, b in enumerate(bitmap) if fill & ~b & 0xFF]
    expect(not cleared, "dma.report-only-sets-bits", f"REPORT cleared pre-set bits in bytes {cleared}",
           logging_off)
    word = int.from_bytes(bitmap, "little")
    fill_word = int.from_bytes(bytes([fill]) * len(bitmap), "little")
    beyond = (word & ~fill_word) >> pages
    expect(beyond == 0, "dma.report-only-sets-bits", f"bits past bit {pages} set: {beyond:#x}", logging_off)
    expect(guard == b"\x5a" * len(guard), "dma.report-only-sets-bits",
           f"REPORT wrote past the bitmap: {guard.hex()}", logging_off)


@pytest.mark.vc_spec("dma.start-writes-page-size", "dma.start-valid")
@pytest.mark.parametrize("hint", [PAGE, 4 * PAGE])
def test_dma_start_writes_back_page_size(logging_off, profile, hint):
    """START writes back the granule it selected: a power of two, at least 4096 (REPORT's minimum)."""
    code, granule = dma.start(logging_off, [(IOVA, 64 * PAGE)], hint)
    expect_errno(code, 0, "dma.start-valid", f"DMA_LOGGING_START with page_size hint {hint}", logging_off)
    expect(granule >= 4096 and not granule & (granule - 1), "dma.start-writes-page-size",
           f"START (hint {hint}) wrote back page_size {granule}", logging_off)


def _dirtier(device):
    """The backend's hook that makes the device DMA-write, or skip: nothing can be checked without it."""
    hooks = device.test_hooks
    if hooks is None or not hasattr(hooks, "dma_write"):
        not_supported(f"the harness cannot make device {device.name} DMA (no test hook on "
                    "this backend): which pages REPORT sets and clears is unchecked")
    return hooks.dma_write


def _report_bits(device, iova: int, length: int, page: int, what: str) -> set[int]:
    code, bitmap, _ = dma.report(device, iova, length, page)
    if code == errno.EOPNOTSUPP:
        not_supported("DMA_LOGGING_REPORT gives EOPNOTSUPP: this kernel is built "
                    "without CONFIG_IOMMUFD_DRIVER (iova_bitmap stub)")
    expect_errno(code, 0, "dma.dirty-pages-reported", what, device)
    word = int.from_bytes(bitmap, "little")
    return {i for i in range(word.bit_length()) if word >> i & 1}


@pytest.mark.vc_spec("dma.dirty-pages-reported", "dma.report-clears-log", "dma.start-valid")
def test_dma_dirty_pages_reported_and_cleared(logging_off, profile):
    """Clean range: no bit. Device writes: exactly their pages, at the granule and rescaled to a
    larger page size. A second REPORT with no DMA in between: no bit (REPORT cleared the log)."""
    write = _dirtier(logging_off)
    pages = 64
    code, granule = dma.start(logging_off, [(IOVA, pages * PAGE)], PAGE)
    expect_errno(code, 0, "dma.start-valid", "DMA_LOGGING_START of 64 pages", logging_off)
    span = pages * PAGE
    n = span // granule
    bits = _report_bits(logging_off, IOVA, span, granule, "REPORT of the clean range")
    expect(not bits, "dma.dirty-pages-reported", f"clean range reports pages {sorted(bits)}", logging_off)
    written = {3 % n, 17 % n, (n - 1)}
    for page in written:
        write(IOVA + page * granule + 8, 8)
    write(IOVA + (n // 2) * granule - 4, 8)              # crosses into the next page
    written |= {n // 2 - 1, n // 2}
    bits = _report_bits(logging_off, IOVA, span, granule, "REPORT after device writes")
    expect(bits == written, "dma.dirty-pages-reported",
           f"device wrote pages {sorted(written)}, REPORT (page_size {granule}) set {sorted(bits)}", logging_off)
    again = _report_bits(logging_off, IOVA, span, granule, "second REPORT with no DMA in between")
    expect(not again, "dma.report-clears-log", f"a second REPORT still sets {sorted(again)}", logging_off)
    write(IOVA + 5 * granule, 1)
    write(IOVA + 6 * granule, 1)
    big = 2 * granule
    bits = _report_bits(logging_off, IOVA, span, big, f"REPORT at page_size {big}")
    expect(bits == {2, 3}, "dma.dirty-pages-reported",
           f"device wrote pages 5 and 6 of {granule} bytes; REPORT at page_size {big} set {sorted(bits)}, "
           "expected [2, 3]", logging_off)


@pytest.mark.vc_spec("dma.start-page-size-hint", "dma.start-writes-page-size", "dma.start-valid")
def test_dma_start_survives_a_large_page_size_hint(logging_off, profile):
    """A VMM maps more client memory than it logs (a 4 KiB region here, where the harness maps DMA
    memory) and hints a large page size (64 KiB, the logged range aligned to it): START succeeds and
    writes back a page size the device tracks at (vfio.h and vfio-user: the driver picks one)."""
    length = hint = 16 * PAGE
    small = IOVA + 4 * length                   # outside the logged range
    transport = logging_off.transport
    mapped = False
    if getattr(transport, "dma_map_raw", None) is not None:
        memory = os.memfd_create("vfio-conform-dma", os.MFD_CLOEXEC)     # mappable memory, as a VMM's
        try:
            os.ftruncate(memory, PAGE)
            mapped = transport.dma_map_raw(small, PAGE, memory) == 0
        finally:
            os.close(memory)
    try:
        code, granule = dma.start(logging_off, [(IOVA, length)], hint)
        expect_errno(code, 0, "dma.start-page-size-hint",
                     f"DMA_LOGGING_START of a {length}-byte range with page_size hint {hint}"
                     + (f" (a {PAGE}-byte DMA region mapped besides)" if mapped else ""), logging_off)
        expect(granule >= 4096 and not granule & (granule - 1), "dma.start-writes-page-size",
               f"START (hint {hint}) wrote back page_size {granule}", logging_off)
    finally:
        dma.stop(logging_off)
        if mapped:
            transport.dma_unmap_raw(small, PAGE)


@pytest.mark.vc_spec("dma.report-any-range", "dma.start-valid")
def test_dma_report_of_a_range_inside_a_logged_one(logging_off, profile):
    """REPORT of pages 4..12 of a 16-page logged range (not starting where the range or its DMA region
    starts) succeeds, as QEMU's and cloud-hypervisor's per-section reports need."""
    code, granule = dma.start(logging_off, [(IOVA, 16 * PAGE)], PAGE)
    expect_errno(code, 0, "dma.start-valid", "DMA_LOGGING_START of 16 pages", logging_off)
    page = max(granule, PAGE)
    code, _, _ = dma.report(logging_off, IOVA + 4 * page, 8 * page, page)
    if code == errno.EOPNOTSUPP and profile.backend == "kernel":
        not_supported("DMA_LOGGING_REPORT gives EOPNOTSUPP: this kernel is built "
                      "without CONFIG_IOMMUFD_DRIVER (iova_bitmap stub)")
    expect_errno(code, 0, "dma.report-any-range",
                 f"DMA_LOGGING_REPORT of pages 4..12 of a logged 16-page range (page_size {page})", logging_off)

