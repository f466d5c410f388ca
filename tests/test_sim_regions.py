"""The sim's device fd at byte level: device/region/IRQ info, caps and argsz, pread/mmap, features."""
import ctypes
import errno

import pytest

from vfio_conform.backends.registry import get as backend
from vfio_conform.backends.sim import SimConfig, open_sim
from vfio_conform.backends.sim.regions import DEVICE_ID, VENDOR_ID
from vfio_conform.device import Device
from vfio_conform.uapi import structs as st
from vfio_conform.uapi.enums import (DeviceFlag, Feature, FeatureOp, PciRegion, RegionCap,
                                     RegionFlag)
from vfio_conform.uapi.ioctl import number

GET, SET, PROBE = FeatureOp.GET, FeatureOp.SET, FeatureOp.PROBE


def open_device(name: str = "sim0", **config) -> Device:
    return Device(open_sim(config, name), io_timeout=1.0)


@pytest.fixture
def device():
    with open_device() as dev:
        yield dev


def raw_ioctl(device: Device, name: str, buf: bytearray) -> int:
    try:
        device.transport.ioctl(device.transport.device_fd, number(name), buf)
        return 0
    except OSError as exc:
        return exc.errno


def test_registered_as_sim_backend():
    from vfio_conform.backends.sim.backend import SimBackend
    assert isinstance(backend("sim"), SimBackend) and backend("sim").name == "sim"


def test_device_info(device):
    info = device.info()
    assert info.flags == DeviceFlag.PCI | DeviceFlag.RESET
    assert (info.num_regions, info.num_irqs) == (9, 5)
    short = bytearray(bytes(st.vfio_device_info(argsz=15)))
    assert raw_ioctl(device, "VFIO_DEVICE_GET_INFO", short) == errno.EINVAL


def test_region_info_layout(device):
    bar0, bar2, cfg = (device.region_info(i) for i in (0, 2, 7))
    assert (bar0.size, bar0.flags) == (64 << 10, RegionFlag.READ | RegionFlag.WRITE | RegionFlag.MMAP
                                       | RegionFlag.CAPS)
    assert bar0.sparse_areas == ((0, 32 << 10), (32 << 10, 32 << 10))
    assert [c.id for c in bar0.caps] == [RegionCap.SPARSE_MMAP]
    assert (bar2.size, bar2.flags, bar2.caps) == (4096, RegionFlag.READ | RegionFlag.WRITE, ())
    assert (cfg.size, cfg.flags) == (256, RegionFlag.READ | RegionFlag.WRITE)
    for index in (1, 3, 4, 5, 6, 8):
        info = device.region_info(index)
        assert (info.size, int(info.flags)) == (0, 0)
    for index in range(9):
        assert device.region_info(index).offset == index << 40
    assert device.try_region_info(9)[0] == errno.EINVAL


def test_region_info_argsz_growth(device):
    code, small = device.try_region_info(0, argsz=32)
    assert code == 0 and small.argsz == 32 + 48 and small.flags & RegionFlag.CAPS and not small.caps
    assert ctypes.c_uint32.from_buffer_copy(small.raw, 12).value == 0            # cap_offset
    code, full = device.try_region_info(0, argsz=small.argsz)
    assert code == 0 and full.caps[0].offset == 32 and full.sparse_areas
    short = bytearray(bytes(st.vfio_region_info(argsz=31, index=0)))
    assert raw_ioctl(device, "VFIO_DEVICE_GET_REGION_INFO", short) == errno.EINVAL


def test_config_space_ids(device):
    ids = device.region_read(PciRegion.CONFIG, 0, 4)
    assert ids == VENDOR_ID.to_bytes(2, "little") + DEVICE_ID.to_bytes(2, "little")


def test_pread_pwrite_and_mmap_agree(device):
    info = device.region_info(0)
    with device.region_mmap(0, 0, 32 << 10, info=info) as low, \
            device.region_mmap(0, 32 << 10, 32 << 10, writable=True, info=info) as high:
        assert bytes(low) + bytes(high) == device.region_read(0, 0, 64 << 10)
        high[100:104] = b"mmap"
        assert device.region_read(0, (32 << 10) + 100, 4) == b"mmap"
        device.region_write(0, 5, b"pwrite")
        assert low[5:11] == b"pwrite"


@pytest.mark.parametrize("index,offset,size", [(0, 64 << 10, 1), (7, 256, 1), (1, 0, 1), (8, 0, 4)])
def test_past_end_or_empty_region_access_fails(device, index, offset, size):
    assert device.try_region_read(index, offset, size)[0] == errno.EINVAL
    assert device.try_region_write(index, offset, b"x" * size)[0] == errno.EINVAL


@pytest.mark.parametrize("index,offset,size", [(0, (64 << 10) - 4, 8), (2, 4095, 2)])
def test_crossing_bar_access_is_clamped_like_vfio_pci(device, index, offset, size):
    """vfio_pci_bar_rw(): a BAR access over the end moves the bytes inside and returns that count."""
    inside = device.region_info(index).size - offset
    assert device.try_region_write(index, offset, b"\x77" * size) == (0, inside)
    assert device.try_region_read(index, offset, size) == (0, b"\x77" * inside)


def test_crossing_config_access_fails_like_vfio_pci(device):
    """vfio_pci_config_rw(): a config access over the end fails (EFAULT), nothing is moved."""
    before = device.region_read(7, 255, 1)
    assert device.try_region_read(7, 255, 2)[0] == errno.EFAULT
    assert device.try_region_write(7, 255, b"\x01\x02")[0] == errno.EFAULT
    assert device.region_read(7, 255, 1) == before


def test_access_to_missing_region_index_fails(device):
    with pytest.raises(OSError) as exc:
        device.transport.pread(device.transport.device_fd, 4, 12 << 40)
    assert exc.value.errno == errno.EINVAL


@pytest.mark.parametrize("index,offset,length", [
    (0, 0, 64 << 10),          # crosses the two sparse areas
    (0, 100, 4096),            # not page-aligned
    (0, 60 << 10, 8192),       # past the end
    (2, 0, 4096),              # BAR2 has no MMAP
    (7, 0, 4096),              # config space
    (1, 0, 4096),              # empty region
])
def test_mmap_refused_outside_sparse_areas(device, index, offset, length):
    with pytest.raises(OSError) as exc:
        device.region_mmap(index, offset, length)
    assert exc.value.errno == errno.EINVAL


def test_irq_info(device):
    assert device.irq_info(0).count == 1 and device.irq_info(1).count == 1
    for index in (2, 3, 4, 5):
        buf = bytearray(bytes(st.vfio_irq_info(argsz=16, index=index)))
        assert raw_ioctl(device, "VFIO_DEVICE_GET_IRQ_INFO", buf) == errno.EINVAL


@pytest.mark.parametrize("feature,op,argsz,want", [
    (Feature.MIGRATION, GET, 7, errno.EINVAL),                 # argsz < 8
    (Feature.MIGRATION, GET | (1 << 20), 16, errno.EINVAL),    # unknown flag bit
    (Feature.MIG_DEVICE_STATE, GET | SET, 16, errno.EINVAL),   # GET|SET without PROBE
    (Feature.MIG_DEVICE_STATE, GET | SET | PROBE, 8, 0),       # PROBE ignores argsz
    (Feature.MIGRATION, PROBE | GET, 8, 0),
    (Feature.MIGRATION, PROBE | SET, 16, errno.EINVAL),        # MIGRATION has no SET
    (Feature.MIGRATION, SET, 16, errno.EINVAL),
    (Feature.MIGRATION, 0, 16, errno.EINVAL),                  # neither GET nor SET
    (Feature.MIG_DEVICE_STATE, GET, 15, errno.EINVAL),         # payload too small
    (Feature.MIG_DATA_SIZE, GET, 16, 0),
    (Feature.LOW_POWER_ENTRY, SET, 8, errno.ENOTTY),           # not handled: vfio-pci-core ENOTTY
    (Feature.DMA_LOGGING_START, SET, 32, errno.ENOTTY),        # no log_ops by default
    (Feature.DMA_LOGGING_REPORT, PROBE | GET, 8, errno.ENOTTY),
    (0x1234, GET, 16, errno.ENOTTY),
])
def test_feature_header_checks(device, feature, op, argsz, want):
    code, _ = device.try_feature(feature, op, bytes(8), argsz=argsz)
    assert code == want


def test_failed_set_writes_back_request_and_no_fd(device):
    code, data = device.try_feature(Feature.MIG_DEVICE_STATE, SET,
                                    bytes(st.vfio_device_feature_mig_state(device_state=9, data_fd=77)))
    out = st.vfio_device_feature_mig_state.from_bytes(data)
    assert (code, out.device_state, out.data_fd) == (errno.EINVAL, 9, -1)


def test_no_migration_means_enotty():
    with open_device(flags=0) as device:
        assert device.try_migration_flags()[0] == errno.ENOTTY
        assert device.get_state_raw()[0] == errno.ENOTTY


def test_dma_logging_when_enabled():
    from vfio_conform.suitelib.depth import dma
    with open_device(dma_logging=True) as device:
        assert device.probe_feature(Feature.DMA_LOGGING_START, SET) == 0
        assert dma.start(device, [(0x10000, 4096)], page_size=4096) == (0, 4096)
        assert dma.start(device, [], page_size=4096)[0] == errno.EINVAL
        code, bitmap, guard = dma.report(device, 0x10000, 4096, 4096)
        assert code == 0 and guard == b"\x5a" * len(guard)
        assert dma.report(device, 0x10000, 4096, 1000)[0] == errno.EINVAL
        assert dma.stop(device) == 0
        ctl = st.vfio_device_feature_dma_logging_control(page_size=4096, num_ranges=1, ranges=0)
        assert device.try_feature(Feature.DMA_LOGGING_START, SET, bytes(ctl))[0] == errno.EFAULT


def test_extra_region_with_type_cap_and_override():
    regions = [{"index": 9, "size": 8192, "flags": ["READ", "WRITE", "MMAP"], "type": [0x80001b36, 1]},
               {"index": 2, "size": 0}]
    with open_device(regions=regions) as device:
        assert device.info().num_regions == 10
        extra = device.region_info(9)
        assert extra.type == (0x80001b36, 1) and extra.size == 8192 and extra.offset == 9 << 40
        assert device.region_info(2).size == 0
        layout = device.transport.device.layout
        assert layout.regions == ((0, 64 << 10), (9, 8192))
        with device.region_mmap(9, 4096, 4096) as m:
            assert bytes(m) == device.region_read(9, 4096, 4096)


@pytest.mark.parametrize("config,message", [
    ({"colour": 1}, "unknown sim config key"),
    ({"flags": 2}, "not one of"),
    ({"precopy_end": "eof"}, "precopy_end"),
    ({"faults": [{"name": "nope"}]}, "unknown sim fault .nope. .known: .*accept_illegal_arc"),
    ({"faults": [{"name": "truncated_stream", "byts": 3}]}, "no parameter 'byts'"),
    ({"regions": [{"size": 3}]}, "needs 'index'"),
    ({"regions": [{"index": 0, "size": 8192, "sparse": [[100, 4096]]}]}, "page-aligned"),
])
def test_config_validation(config, message):
    with pytest.raises(ValueError, match=message):
        SimConfig.from_dict(config)


def test_unknown_fd_and_ioctl():
    with open_device() as device:
        with pytest.raises(OSError) as exc:
            device.transport.read(12345, 4, 1.0)
        assert exc.value.errno == errno.EBADF
        with pytest.raises(OSError) as exc:
            device.transport.ioctl(device.transport.device_fd, number("VFIO_GET_API_VERSION"))
        assert exc.value.errno == errno.ENOTTY
