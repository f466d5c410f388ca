"""Each sim fault knob changes exactly the behaviour it names (unit level; the suites catch them too)."""
import errno

import pytest

from vfio_conform.backends.sim.faults import CORE_FAULTS
from vfio_conform.backends.sim import FAULTS, Fault, faults_for_rule, open_sim
from vfio_conform.device import Device
from vfio_conform.model.plan import reach
from vfio_conform.model.spec import RULES
from vfio_conform.uapi.enums import MigFlag, MigState

S = MigState


def open_device(name: str = "sim0", faults=(), **config) -> Device:
    return Device(open_sim(dict(config, faults=list(faults)), name), io_timeout=1.0)


def walk(device: Device, state: MigState):
    fds = device.walk(reach(state, 7, device.get_state()))
    return fds[-1] if fds else None


def save(device: Device, chunk: int = 1 << 20) -> bytes:
    fd = walk(device, S.STOP_COPY)
    data = b"".join(fd.chunks(chunk))
    device.set_state(S.STOP)
    return data


# Each probe does one thing through the uAPI and returns what it saw (clean, faulty differ).
def probe_warn_on_arc(d):
    from vfio_conform.backends.sim.kmsg import SimKernelLog
    from vfio_conform.device.kmsg import find_warnings
    log = SimKernelLog()
    walk(d, S.PRE_COPY_P2P)
    d.set_state(S.PRE_COPY)
    return [w.headline for w in find_warnings(log.read_new())]


def probe_accept_illegal_arc(d):
    walk(d, S.STOP_COPY)
    return d.try_set_state(S.PRE_COPY).errno, d.get_state()


def probe_wrong_errno(d):
    return d.try_set_state(S.ERROR).errno


def probe_fd_on_non_opening_arc(d):
    walk(d, S.STOP_COPY)
    return d.try_set_state(S.STOP).data_fd is not None


def probe_no_fd_on_opening_arc(d):
    walk(d, S.STOP)
    result = d.try_set_state(S.RESUMING)
    return result.errno, result.data_fd is not None


def probe_no_cloexec(d):
    return walk(d, S.STOP_COPY).cloexec


def probe_same_state_not_noop(d):
    return d.try_set_state(S.RUNNING).errno


def probe_out_of_range_accepted(d):
    return d.try_set_state(8).errno


def probe_move_state_on_failed_set(d):
    d.try_set_state(S.ERROR)
    return d.get_state()


def probe_wrong_state_after_set(d):
    d.set_state(S.RUNNING_P2P)
    d.set_state(S.STOP)
    return d.get_state()


def probe_wrong_migration_flags(d):
    return d.migration_flags()


def probe_corrupt_stream(d):
    return save(d, 13) == save(d, 1 << 20)


def probe_truncated_stream(d):
    return len(save(d)) - d.mig_data_size()


def probe_enomsg_in_stop_copy(d):
    fd = walk(d, S.STOP_COPY)
    return fd.drain(4096, allow_enomsg=True).end


def probe_wrong_data_size(d):
    return d.mig_data_size() - len(save(d))


def probe_stale_fd_readable(d):
    fd = walk(d, S.STOP_COPY)
    d.set_state(S.STOP)
    return fd.try_read(16)[0]


def probe_close_keeps_session(d):
    fd = walk(d, S.STOP_COPY)
    d.close(safe=False, keep_data_fds=True)         # the device fd's last close: close_device
    try:
        return fd.try_read(16)[0]
    finally:
        fd.close()


def probe_saving_fd_writable(d):
    return walk(d, S.STOP_COPY).try_write(b"x")[0]


def probe_resuming_fd_readable(d):
    return walk(d, S.RESUMING).try_read(16)


def probe_seekable_fd(d):
    return walk(d, S.STOP_COPY).try_pread(16, 0)


def probe_precopy_info_any_state(d):
    return walk(d, S.STOP_COPY).try_precopy_info()[0]


def probe_precopy_initial_grows(d):
    fd = walk(d, S.PRE_COPY)
    before = fd.precopy_info().initial_bytes
    fd.read(100)
    return fd.precopy_info().initial_bytes - before


def probe_accept_incomplete_resume(d):
    with open_device("src") as src:
        data = save(src)
    walk(d, S.RESUMING).write(data[:-1])
    return d.try_set_state(S.STOP).errno


def probe_reset_keeps_state(d):
    fd = walk(d, S.STOP_COPY)
    d.reset()
    first = d.get_state(), fd.try_read(1)[0]
    d.reset()                                  # no session left: a plain reset works again
    return first, d.get_state()


def probe_failed_set_returns_fd(d):
    result = d.try_set_state(S.ERROR)
    return result.errno, result.raw_fd >= 0


def probe_data_fd_sentinel_kept(d):
    return d.try_set_state(S.STOP).raw_fd


def probe_writeback_reached_state(d):
    return d.try_set_state(S.ERROR).written_state


def probe_data_fd_rdwr(d):
    import os
    return walk(d, S.STOP_COPY).access_mode == os.O_RDONLY


def probe_rejected_set_ends_session(d):
    fd = walk(d, S.STOP_COPY)
    d.try_set_state(S.ERROR)
    return fd.try_read(8)[0]


def probe_saving_group_drops_fd(d):
    fd = walk(d, S.PRE_COPY)
    fd.drain(4096, allow_enomsg=True)
    d.set_state(S.STOP_COPY)
    return fd.try_read(8)[0]


def probe_stop_copy_eof_not_readable(d):
    import select
    fd = walk(d, S.STOP_COPY)
    fd.drain()
    return fd.poll(select.POLLIN) & select.POLLIN


def probe_failed_path_leaves_path(d):
    walk(d, S.STOP)
    d.test_hooks.fail_step(2)
    return d.try_set_state(S.RUNNING).errno, d.get_state()     # STOP -> RUNNING_P2P -> RUNNING


def probe_out_of_range_truncated(d):
    return d.try_set_state(0xFFFFFFFF).errno


def probe_precopy_info_argsz_unchecked(d):
    return walk(d, S.PRE_COPY).try_precopy_info(argsz=16)[0]


def probe_precopy_info_on_resuming_einval(d):
    walk(d, S.STOP)
    fd = d.set_state(S.RESUMING)
    return fd.try_precopy_info()[0]


def probe_precopy_info_stray_flags(d):
    return walk(d, S.PRE_COPY).try_precopy_info()[1].flags


def probe_precopy_reinit_keeps_dirty(d):
    from vfio_conform.device import PRECOPY_INFO_V2
    from vfio_conform.uapi.enums import FeatureOp
    assert d.try_feature(PRECOPY_INFO_V2, FeatureOp.SET)[0] == 0
    fd = walk(d, S.PRE_COPY)
    fd.drain(4096, allow_enomsg=True)
    assert d.test_hooks.precopy_reinit()
    info = fd.precopy_info()
    return info.flags, info.dirty_bytes


def probe_mig_features_einval_without_ops(d):
    return d.try_migration_flags()[0]


def probe_log_features_einval_without_ops(d):
    from vfio_conform.suitelib.depth import dma
    return dma.stop(d)


def probe_dma_start_page_size_bogus(d):
    from vfio_conform.suitelib.depth import dma
    return dma.start(d, [(0x100000, 0x10000)], 4096)


def probe_dma_report_rescale_wrong(d):
    from vfio_conform.suitelib.depth import dma
    dma.start(d, [(0x100000, 0x10000)], 4096)
    d.test_hooks.dma_write(0x100000 + 5 * 4096, 8)
    code, bitmap, _ = dma.report(d, 0x100000, 0x10000, 8192)
    return code, int.from_bytes(bitmap, "little")


def probe_dma_report_keeps_log(d):
    from vfio_conform.suitelib.depth import dma
    dma.start(d, [(0x100000, 0x10000)], 4096)
    d.test_hooks.dma_write(0x100000, 8)
    dma.report(d, 0x100000, 0x10000, 4096)
    return int.from_bytes(dma.report(d, 0x100000, 0x10000, 4096)[1], "little")


def probe_feature_get_set_accepted(d):
    from vfio_conform.uapi import structs as st
    from vfio_conform.uapi.enums import Feature, FeatureOp
    payload = bytes(st.vfio_device_feature_mig_state(device_state=S.STOP, data_fd=-1))
    code, _ = d.try_feature(Feature.MIG_DEVICE_STATE, FeatureOp.GET | FeatureOp.SET, payload)
    return code, d.get_state()


def probe_get_state_fails_in_stop_copy(d):
    walk(d, S.STOP_COPY)
    return d.get_state_raw()[0]


def probe_precopy_info_fails(d):
    return walk(d, S.PRE_COPY).try_precopy_info()[0]


def probe_precopy_info_fails_in_p2p(d):
    fd = walk(d, S.PRE_COPY)
    d.set_state(S.PRE_COPY_P2P)
    return fd.try_precopy_info()[0]


def probe_legal_arc_fails(d):
    walk(d, S.PRE_COPY)
    return d.try_set_state(S.STOP_COPY).errno, d.get_state()


def probe_reserved_migration_flag(d):
    return int(d.migration_flags())


def probe_resume_refuses_valid_stream(d):
    with open_device("src") as src:
        data = save(src)
    walk(d, S.RESUMING).write(data)
    return d.try_set_state(S.STOP).errno


def probe_precopy_end_eof(d):
    fd = walk(d, S.PRE_COPY)
    while fd.try_read(4096)[1]:
        pass
    return fd.try_read(4096)[0]


_DMA = {"dma_logging": True}


def probe_dma_start_refused(d):
    from vfio_conform.suitelib.depth import dma
    return dma.start(d, [(0x100000, 0x10000)], 4096)[0]


def probe_dma_start_hint_refused(d):
    from vfio_conform.suitelib.depth import dma
    d.transport.dma_map_raw(0x1000000, 0x1000)
    return dma.start(d, [(0x100000, 0x10000)], 0x10000)[0]


def probe_dma_report_range_start_only(d):
    from vfio_conform.suitelib.depth import dma
    dma.start(d, [(0x100000, 0x10000)], 4096)
    return dma.report(d, 0x100000 + 4 * 4096, 8 * 4096, 4096)[0]


def probe_dma_map_wrap_accepted(d):
    return d.transport.dma_map_raw((1 << 64) - 4096, 2 * 4096)


def probe_out_of_range_reads_past_table(d):
    from vfio_conform.backends.sim.serverlog import SimServerLog
    from vfio_conform.device.sanitizers import find_reports
    log = SimServerLog()
    code = d.try_set_state(8).errno
    return code, [r.kind for r in find_reports(log.read_new())]

#: knob -> (probe, what a clean sim shows, what the knob makes it show[, sim config])
EXPECTED = {
    "precopy_info_fails": (probe_precopy_info_fails, 0, errno.EIO),
    "legal_arc_fails": (probe_legal_arc_fails, (0, S.STOP_COPY), (errno.EIO, S.PRE_COPY_P2P)),
    "reserved_migration_flag": (probe_reserved_migration_flag, 7, 15),
    "resume_refuses_valid_stream": (probe_resume_refuses_valid_stream, 0, errno.EINVAL),
    "precopy_end_eof": (probe_precopy_end_eof, errno.ENOMSG, 0),
    "accept_illegal_arc": (probe_accept_illegal_arc, (errno.EINVAL, S.STOP_COPY), (0, S.PRE_COPY)),
    "wrong_errno": (probe_wrong_errno, errno.EINVAL, errno.EPERM),
    "fd_on_non_opening_arc": (probe_fd_on_non_opening_arc, False, True),
    "no_fd_on_opening_arc": (probe_no_fd_on_opening_arc, (0, True), (0, False)),
    "no_cloexec": (probe_no_cloexec, True, False),
    "same_state_not_noop": (probe_same_state_not_noop, 0, errno.EBUSY),
    "out_of_range_accepted": (probe_out_of_range_accepted, errno.EINVAL, errno.ERANGE),
    "move_state_on_failed_set": (probe_move_state_on_failed_set, S.RUNNING, S.STOP),
    "wrong_state_after_set": (probe_wrong_state_after_set, S.STOP, S.RUNNING),
    "wrong_migration_flags": (probe_wrong_migration_flags, MigFlag(7), MigFlag(5)),
    "corrupt_stream": (probe_corrupt_stream, True, False),
    "truncated_stream": (probe_truncated_stream, 0, -16),
    "enomsg_in_stop_copy": (probe_enomsg_in_stop_copy, "eof", "enomsg"),
    "wrong_data_size": (probe_wrong_data_size, 0, 77896 + 4096),
    "stale_fd_readable": (probe_stale_fd_readable, errno.ENODEV, 0),
    "close_keeps_session": (probe_close_keeps_session, errno.ENODEV, 0),
    "saving_fd_writable": (probe_saving_fd_writable, errno.EBADF, 0),
    "resuming_fd_readable": (probe_resuming_fd_readable, (errno.EBADF, b""), (0, b"")),
    "seekable_fd": (probe_seekable_fd, errno.ESPIPE, 0),
    "precopy_info_any_state": (probe_precopy_info_any_state, errno.EINVAL, 0),
    "precopy_initial_grows": (probe_precopy_initial_grows, -100, 100),
    "accept_incomplete_resume": (probe_accept_incomplete_resume, errno.EINVAL, 0),
    "reset_keeps_state": (probe_reset_keeps_state, ((S.RUNNING, errno.ENODEV), S.RUNNING),
                          ((S.STOP_COPY, errno.ENODEV), S.RUNNING)),
    "failed_set_returns_fd": (probe_failed_set_returns_fd, (errno.EINVAL, False), (errno.EINVAL, True)),
    "data_fd_sentinel_kept": (probe_data_fd_sentinel_kept, -1, -2),
    "writeback_reached_state": (probe_writeback_reached_state, S.ERROR, S.RUNNING),
    "data_fd_rdwr": (probe_data_fd_rdwr, True, False),
    "rejected_set_ends_session": (probe_rejected_set_ends_session, 0, errno.ENODEV),
    "saving_group_drops_fd": (probe_saving_group_drops_fd, 0, errno.ENODEV),
    "stop_copy_eof_not_readable": (probe_stop_copy_eof_not_readable, 1, 0),
    "failed_path_leaves_path": (probe_failed_path_leaves_path, (errno.EIO, S.RUNNING_P2P),
                                (errno.EIO, S.STOP_COPY)),
    "out_of_range_truncated": (probe_out_of_range_truncated, errno.EINVAL, 0),
    "precopy_info_argsz_unchecked": (probe_precopy_info_argsz_unchecked, errno.EINVAL, 0),
    "precopy_info_on_resuming_einval": (probe_precopy_info_on_resuming_einval, errno.ENOTTY, errno.EINVAL),
    "precopy_info_stray_flags": (probe_precopy_info_stray_flags, 0, 2),
    "precopy_reinit_keeps_dirty": (probe_precopy_reinit_keeps_dirty, (1, 0), (1, 4096)),
    "mig_features_einval_without_ops": (probe_mig_features_einval_without_ops, errno.ENOTTY, errno.EINVAL,
                                        {"flags": 0}),
    "log_features_einval_without_ops": (probe_log_features_einval_without_ops, errno.ENOTTY, errno.EINVAL),
    "dma_start_page_size_bogus": (probe_dma_start_page_size_bogus, (0, 4096), (0, 6144), _DMA),
    "dma_report_rescale_wrong": (probe_dma_report_rescale_wrong, (0, 1 << 2), (0, 1 << 5), _DMA),
    "dma_report_keeps_log": (probe_dma_report_keeps_log, 0, 1, _DMA),
    "feature_get_set_accepted": (probe_feature_get_set_accepted, (errno.EINVAL, S.RUNNING), (0, S.STOP)),
    "get_state_fails_in_stop_copy": (probe_get_state_fails_in_stop_copy, 0, errno.EIO),
    "precopy_info_fails_in_p2p": (probe_precopy_info_fails_in_p2p, 0, errno.EINVAL),
    "warn_on_arc": (probe_warn_on_arc, [], ["sim: PRE_COPY_P2P->PRE_COPY (injected warning)"]),
    "dma_start_refused": (probe_dma_start_refused, 0, errno.EINVAL, _DMA),
    "dma_start_hint_refused": (probe_dma_start_hint_refused, 0, errno.EINVAL, _DMA),
    "dma_report_range_start_only": (probe_dma_report_range_start_only, 0, errno.EOPNOTSUPP, _DMA),
    "dma_map_wrap_accepted": (probe_dma_map_wrap_accepted, errno.EINVAL, 0),
    "out_of_range_reads_past_table": (probe_out_of_range_reads_past_table, (errno.EINVAL, []),
                                      (errno.EINVAL, ["UndefinedBehaviorSanitizer"])),
}


def test_every_knob_has_a_probe_and_a_known_rule():
    assert set(EXPECTED) == set(CORE_FAULTS)
    for fault in FAULTS.values():
        assert isinstance(fault, Fault) and fault.rule_id in RULES, fault
        assert fault in faults_for_rule(fault.rule_id)
    assert faults_for_rule("no.such-rule") == []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_knob_changes_only_its_behaviour(name):
    probe, clean, faulty, *config = EXPECTED[name]
    config = config[0] if config else {}
    with open_device(**config) as device:
        assert probe(device) == clean
        assert device.transport.device.fired == []
    with open_device(faults=[{"name": name}], **config) as device:
        assert probe(device) == faulty
        assert device.transport.device.fired == [name]


def test_knob_params():
    with open_device(faults=[{"name": "truncated_stream", "bytes": 100}]) as device:
        assert probe_truncated_stream(device) == -100
    with open_device(faults=[{"name": "wrong_errno", "errno": errno.EACCES}]) as device:
        assert probe_wrong_errno(device) == errno.EACCES


def test_faults_do_not_change_the_clean_stream():
    """Knobs that do not touch the stream leave its bytes alone (the lead's suites compare them)."""
    with open_device() as clean, open_device(faults=[{"name": "no_cloexec"}, {"name": "seekable_fd"}]) as bent:
        assert save(clean) == save(bent)


def test_one_table_names_area_and_proof_setup_of_every_knob():
    from pathlib import Path
    from vfio_conform.backends.sim.faults import AREA_BASES, names_in
    profiles = Path(__file__).resolve().parent.parent / "profiles"
    for fault in FAULTS.values():
        assert fault.area in AREA_BASES, fault
        assert (profiles / f"{fault.proof_base}.yaml").is_file(), fault
    assert set(CORE_FAULTS) == names_in("core")
    assert FAULTS["v1_chunk_overflow"].proof_base == "sim-v1-slow"
    assert FAULTS["cap_chain_loop"].proof_base == "sim-p2p"
    assert FAULTS["reset_flag_spurious"].sim_config == {"reset_supported": False}
    assert sum(len(names_in(area)) for area in AREA_BASES) == len(FAULTS)
