"""DMA maps of client memory: a range that wraps past 2^64 is refused (VFIO_USER_DMA_MAP on vfio-user;
the sim models the kernel's type1 IOMMU map table; the kernel backend does not drive the IOMMU)."""
import pytest

from vfio_conform.api import expect, not_supported

PAGE = 4096

#: DMA_MAP ranges that pass 2^64: (address, size).
WRAPPING_MAPS = {"last-page-plus-one": ((1 << 64) - PAGE, 2 * PAGE),
                 "huge": (0x10_0000, (1 << 64) - PAGE)}


@pytest.mark.vc_spec("dma.map-wrap-refused")
@pytest.mark.parametrize("case", sorted(WRAPPING_MAPS))
def test_dma_map_wrapping_past_2_64_refused(device, profile, case):
    """A DMA map of a range past 2^64 fails (over vfio-user no memory is passed for it: the server must
    refuse on the numbers alone); an accepted one is unmapped again."""
    address, size = WRAPPING_MAPS[case]
    map_raw = getattr(device.transport, "dma_map_raw", None)
    if map_raw is None:
        not_supported(f"the harness maps no DMA memory on {device.name} (the kernel's IOMMU container is "
                      "not the device's)")
    code = map_raw(address, size)
    if code == 0:
        device.transport.dma_unmap_raw(address, size)
    expect(code != 0, "dma.map-wrap-refused",
           f"VFIO_USER_DMA_MAP of [{address:#x}, +{size:#x}) (past 2^64) was accepted", device)
