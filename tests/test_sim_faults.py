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


#: knob -> (probe, what a clean sim shows, what the knob makes it show)
EXPECTED = {
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
    "saving_fd_writable": (probe_saving_fd_writable, errno.EBADF, 0),
    "resuming_fd_readable": (probe_resuming_fd_readable, (errno.EBADF, b""), (0, b"")),
    "seekable_fd": (probe_seekable_fd, errno.ESPIPE, 0),
    "precopy_info_any_state": (probe_precopy_info_any_state, errno.EINVAL, 0),
    "precopy_initial_grows": (probe_precopy_initial_grows, -100, 100),
    "accept_incomplete_resume": (probe_accept_incomplete_resume, errno.EINVAL, 0),
    "reset_keeps_state": (probe_reset_keeps_state, ((S.RUNNING, errno.ENODEV), S.RUNNING),
                          ((S.STOP_COPY, errno.ENODEV), S.RUNNING)),
}


def test_every_knob_has_a_probe_and_a_known_rule():
    assert set(EXPECTED) == set(CORE_FAULTS)
    for fault in FAULTS.values():
        assert isinstance(fault, Fault) and fault.rule_id in RULES, fault
        assert fault in faults_for_rule(fault.rule_id)
    assert faults_for_rule("no.such-rule") == []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_knob_changes_only_its_behaviour(name):
    probe, clean, faulty = EXPECTED[name]
    with open_device() as device:
        assert probe(device) == clean
        assert device.transport.device.fired == []
    with open_device(faults=[{"name": name}]) as device:
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
