"""The vfio-user backend against libvfio-user's sample server (built from the snapshot into the cache)."""
from __future__ import annotations

import os
import socket
import struct
import tempfile
import threading
import time

import pytest

from run_cli import sqlite_rows, vc
from vfio_user_proxy import FaultProxy
from vfio_conform.backends import registry
from vfio_conform.backends.vfio_user import (VfioUserBackend, VfioUserProtocolError, VfioUserTimeout, open_vfio_user,
                                             socket_path)
from vfio_conform.backends.vfio_user.connection import VfioUserConnectionLost
from vfio_conform.backends.vfio_user.protocol import Cmd, parse_version_reply
from vfio_conform.backends.vfio_user.register import check_device_ids
from vfio_conform.suitelib.checks import not_on_transport
from vfio_conform.suitelib.depth.streams import stop_copy_bytes
from vfio_conform.device import Device
from vfio_conform.base.errors import ConfigError, InfraError, RequestAborted, SpecViolation
from vfio_conform.model.spec import DATA_FD, MESSAGES, RULES
from vfio_conform.results import rootcause
from vfio_conform.uapi.enums import MigFlag, MigState
from vfio_conform.verify.libvfio_user_sample import LibvfioUserSample


def _open(path: str, timeout: float = 5.0) -> Device:
    return Device(open_vfio_user(path, io_timeout=timeout), io_timeout=timeout)


# -- device ids, registration, capabilities ---------------------------------------------------
def test_device_id_syntax():
    assert socket_path("vfio-user:/run/x.sock") == "/run/x.sock"
    assert socket_path("/run/x.sock") == "/run/x.sock"
    assert socket_path("rel.sock") == os.path.abspath("rel.sock")
    with pytest.raises(ConfigError, match="no socket path"):
        socket_path("vfio-user:")
    with pytest.raises(ConfigError, match="named twice"):
        check_device_ids(("vfio-user:/a.sock", "/a.sock"))
    backend = registry.get("vfio-user")
    assert isinstance(backend, VfioUserBackend) and backend.name == "vfio-user"
    assert backend.transport == MESSAGES and registry.get("sim").transport == DATA_FD


def test_version_reply_parsing():
    caps = parse_version_reply(struct.pack("<HH", 0, 2) + b'{"capabilities": {"max_msg_fds": 8, '
                               b'"max_data_xfer_size": 4096, "migration": {"pgsize": 4096}}}\0')
    assert (caps.major, caps.minor, caps.max_msg_fds, caps.max_data_xfer_size, caps.migration_pgsize) \
        == (0, 2, 8, 4096, 4096)
    for bad in (b"\0", struct.pack("<HH", 0, 1) + b"{not json", struct.pack("<HH", 0, 1) + b'{"capabilities": 5}',
                struct.pack("<HH", 0, 1) + b'{"capabilities": {"max_data_xfer_size": 0}}'):
        with pytest.raises(ValueError):
            parse_version_reply(bad)


# -- rules per transport ------------------------------------------------------------------------
def test_fd_rules_do_not_apply_to_messages():
    fd_rule, general = RULES["stream.no-seek"], RULES["stream.round-trip"]
    assert fd_rule.applies_to(DATA_FD) and not fd_rule.applies_to(MESSAGES)
    assert general.applies_to(DATA_FD) and general.applies_to(MESSAGES)
    assert "kernel's data fd" in not_on_transport(["stream.no-seek"], MESSAGES)
    assert not_on_transport(["stream.no-seek"], DATA_FD) is None
    assert not_on_transport(["stream.no-seek", "stream.round-trip"], MESSAGES) is None
    for rule_id in ("resume.hostile-stream-refused", "fsm.legal-arc", "region.mmap-coherent"):
        assert RULES[rule_id].applies_to(MESSAGES), rule_id


def test_what_vfio_user_lacks_is_not_supported_with_the_specs_reason():
    for rule_id in ("datasize.any-state", "stream.data-size-estimate", "precopy.info-works-in-precopy",
                    "precopy.info-argsz-einval", "dma.start-args", "region.mmap-invalid-fails"):
        rule = RULES[rule_id]
        assert not rule.applies_to(MESSAGES) and rule.applies_to(DATA_FD), rule_id
        assert rule.absent_on(MESSAGES) and not rule.absent_on(DATA_FD), rule_id
    # one such rule makes the whole test not-supported (it cannot do its job), with the reason
    why = not_on_transport(["precopy.initial-bytes-decrease", "walk.model-agreement"], MESSAGES)
    assert why and "PRECOPY_INFO" in why and "vfio-user.rst" in why
    assert "Device Features" in not_on_transport(["datasize.any-state"], MESSAGES)
    assert not_on_transport(["precopy.initial-bytes-decrease"], DATA_FD) is None
    # rules that apply on vfio-user cite the vfio-user specification there
    assert "vfio-user.rst" in RULES["fsm.legal-arc"].source_on(MESSAGES)
    assert RULES["fsm.legal-arc"].source_on(DATA_FD) == RULES["fsm.legal-arc"].source
    assert "vfio-user.rst" in RULES["dma.report-any-range"].source_on(MESSAGES)


# -- the sample server ----------------------------------------------------------------------------
def test_precopy_info_and_data_size_are_not_supported_not_an_errno(vfio_user_pair):
    """No message for PRECOPY_INFO, no feature 9: the transport says not-supported, invents no errno."""
    from vfio_conform.results.outcomes import OutcomeSkip
    from vfio_conform.results import Outcome
    src, _ = vfio_user_pair
    dev = _open(src)
    try:
        with pytest.raises(OutcomeSkip) as info:
            dev.try_mig_data_size()
        assert info.value.outcome is Outcome.NOT_SUPPORTED and "feature 9" in info.value.reason
        fd = dev.set_state(MigState.PRE_COPY)
        with pytest.raises(OutcomeSkip) as info:
            fd.try_precopy_info()
        assert info.value.outcome is Outcome.NOT_SUPPORTED and "PRECOPY_INFO" in info.value.reason
        fd.close()                       # (PRE_COPY -> RUNNING aborts this server: not tried here)
    finally:
        dev.close(safe=False)


def test_dma_logging_mappings_go_with_stop(vfio_user_pair):
    """START maps its ranges, STOP unmaps them: a later START of overlapping ranges on the same
    connection works and REPORT sees its own range (no mapping left over from the first START)."""
    from vfio_conform.suitelib.depth import dma
    src, _ = vfio_user_pair
    dev = _open(src)
    try:
        iova, page = 0x10_0000, 4096
        assert dma.start(dev, [(iova, 16 * page)], page)[0] == 0
        assert dev.transport._dma
        assert dma.stop(dev) == 0 and not dev.transport._dma
        assert dma.start(dev, [(iova, 64 * page)], page)[0] == 0
        code, _, _ = dma.report(dev, iova, 60 * page, page)
        assert code == 0
        assert dma.stop(dev) == 0 and not dev.transport._dma
        # a map the server refuses fails START with its errno (an overlapping mapping made by hand)
        assert dev.transport.dma_map_raw(iova + page, page) == 0
        code, _ = dma.start(dev, [(iova, 16 * page)], page)
        assert code != 0 and not dev.transport._dma
        assert dev.transport.dma_unmap_raw(iova + page, page) == 0
    finally:
        dev.close(safe=False)


def test_dma_map_past_2_64_is_accepted_by_the_sample(vfio_user_pair):
    """The defect dma.map-wrap-refused reports: libvfio-user 7e7a0a6c4f21 takes a map past 2^64."""
    src, _ = vfio_user_pair
    dev = _open(src)
    try:
        assert dev.transport.dma_map_raw((1 << 64) - 4096, 2 * 4096) == 0
        assert dev.transport.dma_map_raw(0x10_0000, (1 << 64) - 4096) != 0     # this one it refuses
    finally:
        dev.close(safe=False)


def test_negotiation_and_device_info(vfio_user_pair):
    src, _ = vfio_user_pair
    dev = _open(src)
    try:
        caps = dev.transport.caps
        assert caps.major == 0 and caps.max_data_xfer_size > 0 and caps.migration_pgsize == 4096
        assert dev.migration_flags() == MigFlag.STOP_COPY | MigFlag.PRE_COPY
        assert dev.get_state() == MigState.RUNNING
        info = dev.region_info(1)
        assert info.size == 0x3000 and info.sparse_areas == ((0, 0x1000), (0x2000, 0x1000))
    finally:
        dev.close(safe=False)


def test_slow_path_and_mmap_agree_in_small_chunks(vfio_user_pair):
    src, _ = vfio_user_pair
    dev = _open(src)
    try:
        data = os.urandom(0x3000)
        object.__setattr__(dev.transport.caps, "max_data_xfer_size", 100)   # force many messages
        dev.region_write(1, 0, data)
        for page in (0, 0x2000):          # the mmap-able sparse areas
            with dev.region_mmap(1, page, 0x1000, writable=False) as m:
                assert bytes(m[:0x1000]) == data[page:page + 0x1000]
        # (the sample's BAR1 read handler ignores the offset, so only offset 0 reads back right)
        assert dev.region_read(1, 0, 100) == data[:100]
    finally:
        dev.close(safe=False)


def test_mig_data_read_honours_max_transfer_size(vfio_user_pair):
    src, _ = vfio_user_pair
    dev = _open(src)
    try:
        object.__setattr__(dev.transport.caps, "max_data_xfer_size", 1000)
        dev.set_state(MigState.STOP)
        fd = dev.set_state(MigState.STOP_COPY)
        sizes = [len(chunk) for chunk in fd.chunks(chunk_size=1 << 20)]
        assert max(sizes) == 1000 and sum(sizes) == 0x3000 + 8
    finally:
        dev.close(safe=False)


def _resume(dev: Device, data: bytes) -> None:
    dev.set_state(MigState.STOP)
    fd = dev.set_state(MigState.RESUMING)
    fd.write(data)
    fd.close()
    dev.set_state(MigState.STOP)
    dev.set_state(MigState.RUNNING)


def test_round_trip_carries_bar_contents(vfio_user_pair):
    """Save from one sample server, resume into the other: the hook's BAR state arrived."""
    src, dst = vfio_user_pair
    hook = LibvfioUserSample()
    a, b = _open(src), _open(dst)
    try:
        hook.write(a, 41)
        assert hook.check(a, 41) == []
        assert hook.check(b, 41) != []                  # the check can fail: b never got the state
        _resume(b, stop_copy_bytes(a))
        assert hook.check(b, 41) == []
        assert hook.check(b, 42) != []
    finally:
        a.close(safe=False)
        b.close(safe=False)


# -- protocol faults are infrastructure errors naming the message ----------------------------------
@pytest.mark.parametrize("fault,cmd,match", [
    ("drop", Cmd.DEVICE_GET_REGION_INFO, "VFIO_USER_DEVICE_GET_REGION_INFO: no reply header within"),
    ("delay", Cmd.REGION_READ, "VFIO_USER_REGION_READ: no reply header within"),
    ("close", Cmd.DEVICE_FEATURE, "VFIO_USER_DEVICE_FEATURE: server closed the socket"),
    ("truncate", Cmd.MIG_DATA_READ, "VFIO_USER_MIG_DATA_READ: server closed the socket"),
    ("bad_id", Cmd.DEVICE_GET_INFO, "VFIO_USER_DEVICE_GET_INFO: reply has msg_id"),
    ("short", Cmd.REGION_READ, "VFIO_USER_REGION_READ: reply msg_size 8 is impossible"),
])
def test_protocol_fault_is_infra_error(vfio_user_pair, fault, cmd, match):
    src, _ = vfio_user_pair
    listen = tempfile.mktemp(prefix="vc-proxy-", suffix=".sock")
    proxy = FaultProxy(listen, src, fault, int(cmd), delay=3.0)
    try:
        dev = _open(listen, timeout=1.0)
        started = time.monotonic()
        with pytest.raises(VfioUserProtocolError, match=match) as exc:
            dev.region_info(1)
            dev.info()
            dev.region_read(1, 0, 8)
            dev.migration_flags()
            dev.set_state(MigState.STOP)
            fd = dev.set_state(MigState.STOP_COPY)
            fd.read(64)
        assert isinstance(exc.value, InfraError) and not isinstance(exc.value, OSError)
        assert time.monotonic() - started < 3.0
        assert proxy.fired.is_set()
        assert dev.transport.connection_lost
        with pytest.raises(VfioUserProtocolError, match="unusable after an earlier fault"):
            dev.get_state()
        if fault in ("drop", "delay"):
            assert isinstance(exc.value, VfioUserTimeout)
        dev.close(safe=False)
    finally:
        proxy.close()


def test_server_closing_instead_of_answering_a_legal_set_is_a_finding(vfio_user_pair):
    """The server going away in answer to a SET along a legal arc is the device breaking
    fsm.legal-arc (naming the request); the connection is marked lost so the pool reconnects."""
    src, _ = vfio_user_pair
    listen = tempfile.mktemp(prefix="vc-proxy-", suffix=".sock")
    # DEVICE_FEATURE replies: MIGRATION GET, MIG_DEVICE_STATE GET, then the SET that is dropped
    proxy = FaultProxy(listen, src, "close", int(Cmd.DEVICE_FEATURE), after=2)
    try:
        dev = _open(listen, timeout=1.0)
        assert dev.migration_flags() & MigFlag.STOP_COPY
        assert dev.get_state() == MigState.RUNNING
        with pytest.raises(SpecViolation, match=r"SET MIG_DEVICE_STATE STOP from RUNNING: the device "
                                                r"closed its connection.*VFIO_USER_DEVICE_FEATURE") as exc:
            dev.try_set_state(MigState.STOP)
        assert exc.value.rule_id == "fsm.legal-arc" and dev.transport.connection_lost
        dev.close(safe=False)
    finally:
        proxy.close()


class _ClosingTransport:
    """A transport whose server goes away on every ioctl (no reply at all)."""
    name, device_fd = "closing", 3

    def ioctl(self, fd, request, buf):
        err = VfioUserConnectionLost("VFIO_USER_DEVICE_FEATURE", "server closed the socket")
        raise err


@pytest.mark.parametrize("known,state,rule", [
    (None, MigState.STOP, "fsm.legal-arc"),
    ((MigState.RUNNING, MigFlag.STOP_COPY), MigState.STOP, "fsm.legal-arc"),
    ((MigState.RUNNING, MigFlag.STOP_COPY), MigState.PRE_COPY, "fsm.illegal-arc-einval"),
    ((MigState.RUNNING, MigFlag.STOP_COPY), MigState.ERROR, "fsm.illegal-arc-einval"),
    (None, 9, "fsm.out-of-range-einval"),
])
def test_set_answered_by_a_closed_connection_names_the_sets_rule(known, state, rule):
    dev = Device(_ClosingTransport())
    if known:
        dev._known_state, dev._known_flags = int(known[0]), int(known[1])
    with pytest.raises(SpecViolation) as exc:
        dev.try_set_state(state)
    assert exc.value.rule_id == rule


def test_other_requests_answered_by_a_closed_connection_stay_infra_errors():
    dev = Device(_ClosingTransport())
    with pytest.raises(RequestAborted) as exc:
        dev.try_migration_flags()
    assert isinstance(exc.value, InfraError) and not isinstance(exc.value, SpecViolation)


def test_delay_within_timeout_is_fine(vfio_user_pair):
    src, _ = vfio_user_pair
    listen = tempfile.mktemp(prefix="vc-proxy-", suffix=".sock")
    proxy = FaultProxy(listen, src, "delay", int(Cmd.REGION_READ), delay=0.3)
    try:
        dev = _open(listen, timeout=2.0)
        dev.region_write(1, 0, b"x" * 8)
        assert dev.region_read(1, 0, 8) == b"x" * 8 and proxy.fired.is_set()
        dev.close(safe=False)
    finally:
        proxy.close()


def test_hung_server_caught_at_negotiation():
    """A server that accepts and never answers: VERSION times out (no hang)."""
    path = tempfile.mktemp(prefix="vc-hung-", suffix=".sock")
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(path)
    lsock.listen(1)
    held = []
    threading.Thread(target=lambda: held.append(lsock.accept()), daemon=True).start()
    try:
        started = time.monotonic()
        with pytest.raises(VfioUserTimeout, match="VFIO_USER_VERSION: no reply header within 0.5 s"):
            open_vfio_user(path, io_timeout=0.5)
        assert time.monotonic() - started < 3
    finally:
        lsock.close()
        os.unlink(path)


def test_no_server_is_a_timeout_not_a_hang():
    with pytest.raises(VfioUserTimeout, match="connect: .* no server listening"):
        open_vfio_user("/nonexistent/vc.sock", io_timeout=0.3)


# -- every suite against the sample server ----------------------------------------------------------
#: Every rule the sample server (7e7a0a6c4f21, sanitized build) fails, each explained in
#: docs/vfio-user.md by its source and the vfio-user specification.
EXPLAINED = {
    "fsm.legal-arc",                   # server.c asserts on legal arcs; arm_timer() EINVAL into RUNNING
    "reset.returns-running",           # lib refuses DEVICE_RESET while stopped
    "reset.device-usable",             # the same refusal, after a resume
    "region-info.caps-argsz",          # FLAG_CAPS left clear with a small argsz
    "region.mmap-coherent",            # the BAR1 read handler ignores the offset
    "resume.hostile-stream-refused",   # no validation of the headerless stream
    "resume.incomplete-stream-fails",  # the same: RESUMING -> STOP succeeds on a cut stream
    "stream.round-trip",               # PRE_COPY + STOP_COPY stream longer than RESUMING takes
    "precopy.dirty-carried",           # the same
    "dma.start-once",                  # a second START succeeds
    "dma.start-page-size-hint",        # a hint larger than a DMA region: EINVAL
    "dma.report-any-range",            # REPORT not at a region's start: ENOTSUP
    "dma.map-wrap-refused",            # a DMA_MAP past 2^64 is accepted (UBSan: dma.c pointer overflow)
    "server.no-sanitizer-report",      # UBSan: migration.c next_state index 8; dma.c pointer overflow
}


def test_every_suite_runs_against_the_sample_server(vfio_user_sanitized_pair, tmp_path):
    src, dst = vfio_user_sanitized_pair
    proc = vc("run", "--profile", "libvfio-user-sample", "--device", f"vfio-user:{src}",
              "--device", f"vfio-user:{dst}", "--reports", tmp_path, "-q", timeout=600)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]     # findings, no crash
    rows = sqlite_rows(tmp_path / "results.sqlite", "SELECT test_id, outcome, rule, message FROM results")
    latest = {r["test_id"]: r for r in rows}
    by = {}
    for r in latest.values():
        by.setdefault(r["outcome"], []).append(r)
    assert by.get("pass") and by.get("fail")
    # the data-fd rules are not-supported, with the reason
    fd_skips = [r for r in by["not-supported"] if "kernel's data fd" in (r["message"] or "")]
    assert {"stream.no-seek", "stream.saving-fd-not-writable"} <= {r["rule"] for r in fd_skips}
    # what vfio-user does not offer is not-supported with the specification's reason, never failed
    absent = {r["rule"] for r in by["not-supported"] if "vfio-user" in (r["message"] or "")}
    assert {"datasize.any-state", "stream.data-size-estimate", "precopy.info-works-in-precopy",
            "precopy.info-argsz-einval", "dma.start-args", "region.mmap-invalid-fails"} <= absent, absent
    # every failure is one docs/vfio-user.md explains; the new checks see the server's defects
    failed = {r["rule"] for r in rows if r["outcome"] == "fail"}     # a call's and its teardown's
    assert failed <= EXPLAINED, failed - EXPLAINED
    assert {"reset.returns-running", "region-info.caps-argsz", "dma.map-wrap-refused", "dma.report-any-range",
            "dma.start-page-size-hint", "server.no-sanitizer-report"} <= failed
    ubsan = " ".join(r["message"] or "" for r in by["fail"] if r["rule"] == "server.no-sanitizer-report")
    assert "migration.c" in ubsan and "index 8 out of bounds" in ubsan and "dma.c" in ubsan
    # DMA logging on a clean connection: the tests that failed only in a full run (leaked mappings) pass
    for name in ("test_dma_report_only_sets_bits", "test_dma_report_rejects_bad_page_size"):
        mine = [r for r in latest.values() if r["test_id"].startswith(name + "[")]
        assert mine and all(r["outcome"] in ("pass", "not-supported") for r in mine), mine
    # the server aborting on legal arcs is the device's finding, named by the SET it broke off
    aborted = [r for r in by["fail"] if "closed its connection instead of answering" in (r["message"] or "")]
    assert aborted and all(r["rule"] == "fsm.legal-arc" for r in aborted), aborted[:3]
    # one finding per root cause: later teardowns that hit a reported one are not failed again
    spoiled = [r for r in latest.values() if (r["message"] or "").startswith(rootcause.SPOILED)]
    assert spoiled and all(r["outcome"] == "pass" for r in spoiled)
    assert "root cause(s)" in proc.stdout
    # the suites' verified round trip (hook libvfio-user-sample) passes
    verified = [r for r in rows if r["test_id"].startswith("test_round_trip_verified[")]
    assert verified and all(r["outcome"] == "pass" for r in verified), verified
    # a lost connection never leaks into later tests: each infra-error is a server that went away
    for r in by.get("infra-error", []):
        assert "unusable after an earlier fault" not in (r["message"] or ""), r
    # the consumer lines say which path they model and that neither consumer can migrate a vfio-user device
    assert "QEMU's vfio-user client" in proc.stdout and "cannot migrate" in proc.stdout
    assert "cloud-hypervisor cannot migrate it" in proc.stdout
    # QEMU's scenarios and the MIG_DATA_SIZE tests end not-supported with the specification's reason
    for name in ("test_consumer_qemu_source", "test_consumer_qemu_dirty_tracking", "test_data_size_in_every_state",
                 "test_running_estimate_matches_stream"):
        mine = [r for r in latest.values() if r["test_id"].startswith(name + "[")]
        assert mine and all(r["outcome"] == "not-supported" and "feature 9" in (r["message"] or "")
                            and "vfio-user.rst" in (r["message"] or "") for r in mine), (name, mine[:2])


# -- setup step, bad input, the newest snapshot -------------------------------------------------------
def test_build_is_cached(vfio_user_server_bin, monkeypatch):
    """A second build of a built snapshot runs nothing (no meson, no unpacking)."""
    from vfio_conform.backends.vfio_user import build as build_mod
    monkeypatch.setattr(build_mod.shutil, "which", lambda tool: None)
    monkeypatch.setattr(build_mod.tarfile, "open", lambda *a, **k: pytest.fail("unpacked again"))
    assert build_mod.build(build_mod.default_tarball()) == vfio_user_server_bin


def test_build_refuses_a_bad_snapshot_name(tmp_path):
    from vfio_conform.backends.vfio_user.build import main
    bogus = tmp_path / "something.tar.gz"
    bogus.write_bytes(b"")
    assert main(["--tarball", str(bogus)]) == 2


def test_same_socket_twice_is_bad_input(tmp_path):
    proc = vc("run", "--profile", "libvfio-user-sample", "--device", "vfio-user:/tmp/vc-x.sock",
              "--device", "/tmp/vc-x.sock", "--no-store", timeout=60)
    assert proc.returncode == 2 and "named twice" in proc.stderr and "Traceback" not in proc.stderr


def test_newest_snapshot_sample_refuses_to_start():
    """efd091bce1c1 validates BAR sizes; its sample server's 3-page BAR1 is refused at start."""
    import subprocess
    from vfio_conform.backends.vfio_user.build import BuildError, build, default_tarball
    tarball = default_tarball("efd091bce1c1")
    if not tarball.is_file():
        pytest.skip(f"{tarball} not present")
    try:
        server = build(tarball)
    except BuildError as exc:
        pytest.skip(str(exc))
    sock = tempfile.mktemp(prefix="vc-new-", suffix=".sock")
    proc = subprocess.run([str(server), sock], capture_output=True, text=True, timeout=10)
    assert proc.returncode != 0
    assert "BAR region size 12288 must be a power of 2" in proc.stderr + proc.stdout
    try:        # the socket file is left behind with no listener: the harness times out connecting
        with pytest.raises(VfioUserTimeout, match="no server listening"):
            open_vfio_user(sock, io_timeout=0.5)
    finally:
        if os.path.exists(sock):
            os.unlink(sock)


@pytest.mark.parametrize("before,new,kind", [
    (MigState.STOP, MigState.STOP_COPY, "saving"), (MigState.RUNNING, MigState.PRE_COPY, "saving"),
    (MigState.RUNNING_P2P, MigState.PRE_COPY_P2P, "saving"), (MigState.STOP, MigState.RESUMING, "resuming"),
    (MigState.RUNNING, MigState.STOP_COPY, "saving"),          # a multi-step path ending in STOP_COPY
    (MigState.PRE_COPY, MigState.STOP_COPY, None), (MigState.PRE_COPY_P2P, MigState.STOP_COPY, None),
    (MigState.STOP_COPY, MigState.STOP, None), (MigState.RUNNING, MigState.STOP, None),
    (MigState.STOP_COPY, MigState.STOP_COPY, None),
])
def test_data_fd_handed_out_on_the_kernels_arcs(before, new, kind):
    """The stand-in data fd comes on the arcs where the kernel opens a session, with its access mode."""
    import fcntl
    from vfio_conform.backends.vfio_user.transport import VfioUserTransport
    t = VfioUserTransport.__new__(VfioUserTransport)
    t._data, t.closed = {}, False
    fd = t._session_fd(int(before), int(new))
    try:
        if kind is None:
            assert fd == -1
        else:
            mode = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
            assert mode == (os.O_RDONLY if kind == "saving" else os.O_WRONLY)
            assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    finally:
        for f in t._data:
            os.close(f)
