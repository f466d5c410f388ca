"""The consumers' ioctl sequences (docs/consumers.md), replayed through the Device interface.

`Qemu` follows hw/vfio/migration.c: a cached device_state (a SET equal to it issues no ioctl), one
held data_fd, a read buffer of MIN(1 MiB, MIG_DATA_SIZE), ENOMSG or an empty read as the end of the
data. `CloudHypervisor` follows pci/src/vfio.rs: one SET per step (the kernel walks the path),
reads to the end, one write of the whole blob (of up to ONE_WRITE bytes at a time: streams read by
either consumer are spilled to disk, never held whole), recovery by a named state then a reset.
Every step checks what the consumer relies on and names the rule; `log` is the replayable sequence.
"""
from __future__ import annotations

import array
import collections
import errno
import mmap
import os
from typing import Iterator

from .checks import expect, expect_state
from .depth import dma
from ..backends import registry
from .spill import SpillDir, default_spill_dir
from ..base.errors import errno_name
from ..model.spec import DATA_FD, RULES
from ..model.plan import WARN_FROM_ERROR, plan
from ..results.outcomes import not_supported
from ..uapi.enums import Feature, FeatureOp, MigFlag, MigState

S = MigState
MIB = 1 << 20
#: QEMU's read buffer cap (VFIO_MIG_DEFAULT_DATA_BUFFER_SIZE) and its stop-copy size when the query fails.
QEMU_BUFFER_CAP = MIB
QEMU_UNKNOWN_STOP_COPY = 100 << 30
#: cloud-hypervisor reads the saving fd to its end; the chunk size is the harness's choice.
CH_READ = 64 << 10


def verify_arrived(hook, dev, tag: int, rule: str, context: str) -> None:
    """The verify hook finds on `dev` the state written with `tag`; otherwise `rule` fails."""
    problems = hook.check(dev, tag)
    expect(not problems, rule, f"{context}: " + "; ".join(problems), dev)


#: The largest single write() of a stream (cloud-hypervisor writes its whole blob at once; a longer
#: blob is written in writes of this size, so the harness never holds a whole device state).
ONE_WRITE = 16 * MIB
#: Steps a consumer's log keeps (messages name the last six).
LOG_KEEP = 64


class Saved:
    """A stream as a consumer read it, spilled to disk (suitelib/spill.py) with the length of every
    non-empty read(), in order (QEMU forwards each read as one write)."""

    def __init__(self, spill: SpillDir | None = None):
        self.file = (spill or default_spill_dir()).temporary_file("consumer-")
        self.sizes = array.array("Q")
        self.length = 0

    def append(self, data) -> None:
        view = memoryview(data)
        while len(view):
            view = view[self.file.write(view):]
        self.sizes.append(len(data))
        self.length += len(data)

    def __len__(self) -> int:
        return self.length

    def chunks(self) -> Iterator[bytes]:
        """Each read() as it came (bounded by the consumer's read size)."""
        pos, fd = 0, self.file.fileno()
        for n in self.sizes:
            yield os.pread(fd, n, pos)
            pos += n

    def pieces(self, limit: int | None = None, size: int = ONE_WRITE) -> Iterator[bytes]:
        """The first `limit` bytes (all by default) in pieces of at most `size` bytes."""
        end = self.length if limit is None else min(limit, self.length)
        fd = self.file.fileno()
        for pos in range(0, end, size):
            yield os.pread(fd, min(size, end - pos), pos)

    def close(self) -> None:
        self.file.close()

    def __del__(self):
        try:
            self.file.close()
        except Exception:
            pass


class Consumer:
    """Common bookkeeping: the device, its flags, a cached state, the held data_fd and a log."""

    name = "consumer"

    def __init__(self, device, profile, kernel_release: str = ""):
        self.dev, self.profile, self.flags = device, profile, profile.flags
        self.kernel_release = kernel_release
        self.state = S.RUNNING          # both consumers assume RUNNING when they attach
        self.fd = None
        #: the consumer's recent steps (a read per 64 KiB of a gigabyte state: the last LOG_KEEP only)
        self.log: collections.deque[str] = collections.deque(maxlen=LOG_KEEP)

    def in_error_and_gated(self) -> bool:
        """True when the device is in ERROR and a SET from there may WARN (hazard not cleared for
        this kernel): the consumer's SET is then skipped (logged) and recovery goes to the reset."""
        code, state, _ = self.dev.get_state_raw()
        if code or state != S.ERROR:
            return False
        if self.profile.hazard_safe(WARN_FROM_ERROR.name, self.kernel_release):
            return False
        self.log.append(f"SET from ERROR skipped: {WARN_FROM_ERROR.reason}")
        return True

    def where(self) -> str:
        return f"{self.name} on {self.dev.name}: " + "; ".join(list(self.log)[-6:])

    def try_set(self, target: MigState):
        """One SET; checks the data_fd against the model when it succeeds; returns the SetResult."""
        p = plan(self.state, target, self.flags)
        result = self.dev.try_set_state(target)
        self.log.append(f"SET {target.name} from {self.state.name}: {errno_name(result.errno)}"
                        + (" +fd" if result.data_fd is not None else ""))
        if result.errno == 0:
            got_fd = result.data_fd is not None
            if got_fd != p.data_fd:
                if result.data_fd is not None:
                    result.data_fd.close()
                expect(False, "fsm.data-fd-on-opening-arc" if p.data_fd else "fsm.no-data-fd-otherwise",
                       f"{target.name} ({p.describe()}) returned data_fd: {got_fd} | {self.where()}", self.dev)
            if result.data_fd is not None:
                self.close_fd()
                self.fd = result.data_fd
            self.state = target
        return result

    def set(self, target: MigState, rule: str = "fsm.legal-arc") -> None:
        """A SET the consumer needs to succeed (failure names `rule`)."""
        result = self.try_set(target)
        expect(result.errno == 0, rule, f"SET {target.name} failed with {errno_name(result.errno)} | "
                                       f"{self.where()}", self.dev)

    def close_fd(self) -> None:
        if self.fd is not None:
            self.fd.close()
            self.log.append("close(data_fd)")
            self.fd = None

    def write_saved(self, saved: Saved, rule: str, limit: int | None = None) -> None:
        """Write `saved` (its first `limit` bytes) in writes of up to ONE_WRITE bytes."""
        for piece in saved.pieces(limit):
            self.write_all(piece, rule)

    def try_write_blob(self, saved: Saved, extra: bytes = b"") -> tuple[int, int]:
        """`saved` + `extra` in writes of up to ONE_WRITE bytes (one write for a blob that fits):
        (errno of the first failed or short write, bytes accepted in all)."""
        done = 0
        pieces = list(saved.pieces()) if saved.length + len(extra) <= ONE_WRITE else None
        if pieces is not None:
            pieces = [b"".join(pieces) + extra]
        for piece in pieces if pieces is not None else _with_tail(saved.pieces(), extra):
            code, n = self.fd.try_write(piece)
            done += n if not code else 0
            if code or n != len(piece):
                return code, done
        return 0, done

    def write_all(self, data: bytes, rule: str) -> None:
        """Write `data` to the resuming fd, looping on short writes (both consumers do)."""
        expect(self.fd is not None, "fsm.data-fd-on-opening-arc", f"no resuming data_fd | {self.where()}",
               self.dev)
        done = 0
        while done < len(data):
            code, n = self.fd.try_write(data[done:])
            if code or n <= 0:
                self.log.append(f"write({len(data) - done}) at {done}: {errno_name(code)}")
                expect(False, rule, f"write of a valid stream failed at byte {done} of {len(data)}: "
                                    f"{errno_name(code)} | {self.where()}", self.dev)
            done += n
        self.log.append(f"write({len(data)})")

    def reset(self) -> int:
        code = self.dev.try_reset()
        self.log.append(f"VFIO_DEVICE_RESET: {errno_name(code)}")
        if code == 0:
            self.close_fd()
            self.state = S.RUNNING
        return code


class Qemu(Consumer):
    """QEMU's VFIO migration for one device (source or destination)."""

    name = "QEMU"

    def __init__(self, device, profile, kernel_release: str = ""):
        super().__init__(device, profile, kernel_release)
        self.bufsize = 0
        self.init = self.dirty = 0
        self.initial_sent = False

    def set(self, target: MigState, rule: str = "fsm.legal-arc", same_state: bool = False) -> None:
        """vfio_migration_set_state: no ioctl when the cached state already is `target` (unless
        `same_state`, which issues it anyway as a consumer with a stale cache would)."""
        if target == self.state and not same_state:
            self.log.append(f"(cached {target.name}: no SET)")
            return
        super().set(target, rule)

    # -- source: realize, save setup, iterate, vm stop, complete, cleanup ------------------------
    def realize(self) -> None:
        """vfio_migration_init: GET MIGRATION (STOP_COPY required), PROBE DMA_LOGGING_START."""
        code, flags = self.dev.try_migration_flags()
        self.log.append(f"GET MIGRATION: {errno_name(code)} flags {flags:#x}")
        expect(code == 0 and flags & MigFlag.STOP_COPY, "fsm.flags-valid",
               f"GET MIGRATION gave {errno_name(code)}, flags {flags:#x} | {self.where()}", self.dev)
        code, _ = self.dev.try_feature(Feature.DMA_LOGGING_START, FeatureOp.PROBE)
        self.log.append(f"PROBE DMA_LOGGING_START: {errno_name(code)}")
        self.dirty_tracking = code == 0

    def save_setup(self) -> None:
        """MIG_DATA_SIZE (while RUNNING) sizes the buffer; with PRE_COPY: SET PRE_COPY, PRECOPY_INFO.
        A transport without MIG_DATA_SIZE (vfio-user: not in its specification's feature table) ends
        the scenario not-supported with that reason: QEMU's path needs the feature."""
        why = self._absent("consumer.qemu-data-size-nonzero")
        if why:
            not_supported(f"QEMU's migration path asks MIG_DATA_SIZE at save setup: {why}")
        code, size = self.dev.try_mig_data_size()
        self.log.append(f"GET MIG_DATA_SIZE in {self.state.name}: {errno_name(code)} {size}")
        self.bufsize = min(QEMU_BUFFER_CAP, size if code == 0 else QEMU_UNKNOWN_STOP_COPY)
        expect(self.bufsize > 0, "consumer.qemu-data-size-nonzero",
               f"MIG_DATA_SIZE in {self.state.name} is 0: QEMU's buffer MIN(1 MiB, 0) cannot be "
               f"allocated and save setup fails | {self.where()}", self.dev)
        if self.flags & MigFlag.PRE_COPY and self.state is S.RUNNING:
            self.set(S.PRE_COPY)
            self.query_precopy()

    def query_precopy(self) -> tuple[int, int] | None:
        """vfio_query_precopy_size: PRECOPY_INFO into QEMU's counters (0, 0 when it fails)."""
        code, info = self.fd.try_precopy_info()
        self.log.append(f"PRECOPY_INFO: {errno_name(code)}"
                        + (f" initial {info.initial_bytes} dirty {info.dirty_bytes}" if info else ""))
        self.init, self.dirty = (info.initial_bytes, info.dirty_bytes) if info else (0, 0)
        return (info.initial_bytes, info.dirty_bytes) if info else None

    def save_block(self, stop_copy: bool) -> bytes:
        """vfio_save_block: one read of the buffer size; ENOMSG and 0 both mean 'no data now'."""
        code, data = self.fd.try_read(self.bufsize)
        self.log.append(f"read({self.bufsize}): {errno_name(code)}, {len(data)} bytes")
        if code == errno.ENOMSG:
            expect(not stop_copy, "stream.stop-copy-eof",
                   f"read() in STOP_COPY failed with ENOMSG: QEMU takes that as the end of the device "
                   f"state and migrates a truncated stream without an error | {self.where()}", self.dev)
            return b""
        expect(code == 0, "walk.model-agreement",
               f"read() on the live saving data_fd in {self.state.name}: {errno_name(code)} | "
               f"{self.where()}", self.dev)
        return data

    def account(self, n: int) -> None:
        """vfio_update_estimated_pending_data: bytes read count against initial, then dirty."""
        if not n:
            self.init = self.dirty = 0
            return
        used = min(self.init, n)
        self.init -= used
        self.dirty -= min(self.dirty, n - used)

    def pending_exact(self) -> int:
        """vfio_state_pending_exact (QEMU 10.0), which the migration core calls when the cached
        estimate (RAM plus PRECOPY_INFO's initial + dirty bytes as last queried) fell below its
        switch-over threshold: MIG_DATA_SIZE, counted as pending; on failure QEMU silently counts
        VFIO_MIG_STOP_COPY_SIZE, 100 GiB ("so downtime limit won't be violated"). In pre-copy it
        also re-queries PRECOPY_INFO (0, 0 on failure) for the next estimate; 10.0 does not add those
        bytes to the exact count. A failed MIG_DATA_SIZE is no error to QEMU, but the exact pending
        size never falls below the threshold: the migration never converges (measured with QEMU
        10.0.13 on mtty_nosize, docs/consumers-qemu.md). A failed PRECOPY_INFO only zeroes the
        estimate: QEMU asks for the exact size at once and converges. A device without PRE_COPY is
        asked as well, in its RUNNING state, during the RAM pre-copy rounds."""
        code, size = self.dev.try_mig_data_size()
        self.log.append(f"GET MIG_DATA_SIZE in {self.state.name}: {errno_name(code)} {size}")
        expect(code == 0 or self._lacks("consumer.qemu-converges"), "consumer.qemu-converges",
               f"MIG_DATA_SIZE in {self.state.name} failed with {errno_name(code)}: QEMU reports no "
               f"error but counts 100 GiB pending for the device in every exact pending-size query of "
               f"the pre-copy phase, so the migration never converges (switch-over never happens) | "
               f"{self.where()}",
               self.dev)
        if self.state in (S.PRE_COPY, S.PRE_COPY_P2P):
            self.query_precopy()
        return size if code == 0 else QEMU_UNKNOWN_STOP_COPY

    def _absent(self, rule_id: str) -> str:
        """Why the device's transport does not offer what `rule_id` checks ('' when it does; vfio-user
        has no MIG_DATA_SIZE: model/spec.py not_offered)."""
        transport = getattr(registry.get(self.profile.backend), "transport", DATA_FD)
        return RULES[rule_id].absent_on(transport)

    def _lacks(self, rule_id: str) -> bool:
        """True when the transport does not offer what `rule_id` checks, so the consumer's answer
        there is no finding."""
        return bool(self._absent(rule_id))

    def iterate(self, saved: Saved, max_rounds: int) -> bool:
        """Pre-copy rounds (pending_exact then save_live_iterate) until QEMU's counters are 0.

        Returns whether the 'initial data sent' point (initial count 0) was reached."""
        for _ in range(max_rounds):
            self.pending_exact()
            data = self.save_block(stop_copy=False)
            if data:
                saved.append(data)
            self.account(len(data))
            if not self.init:
                self.initial_sent = True
            if not self.init and not self.dirty:
                break
        return self.initial_sent

    def vm_stop(self) -> None:
        """vm_state change to stopped: with P2P the prepare step first, then STOP_COPY or STOP."""
        if self.flags & MigFlag.P2P:
            self.set(S.PRE_COPY_P2P if self.state is S.PRE_COPY else S.RUNNING_P2P)
        self.set(S.STOP_COPY if self.state in (S.PRE_COPY, S.PRE_COPY_P2P) else S.STOP)

    def complete(self, saved: Saved) -> None:
        """save_live_complete_precopy: SET STOP_COPY (issued even when cached), read to the end."""
        self.set(S.STOP_COPY, same_state=True)
        for _ in range(max(1 << 16, 2 * QEMU_UNKNOWN_STOP_COPY // max(self.bufsize, 1))):
            data = self.save_block(stop_copy=True)
            if not data:
                return
            saved.append(data)
        expect(False, "stream.stop-copy-eof", f"STOP_COPY stream never ended | {self.where()}", self.dev)

    def save_cleanup(self) -> None:
        """STOP_COPY -> STOP after the migration, then close the data_fd."""
        if self.state is S.STOP_COPY:
            self.set(S.STOP)
        self.close_fd()

    def vm_start(self) -> None:
        """vm_state change to running: with P2P, RUNNING_P2P first (PRE_COPY_P2P from PRE_COPY)."""
        if self.flags & MigFlag.P2P:
            self.set(S.PRE_COPY_P2P if self.state is S.PRE_COPY else S.RUNNING_P2P)
        self.set(S.RUNNING)

    def save(self) -> Saved:
        """A whole successful outgoing migration; the device ends in STOP with the fd closed."""
        saved = Saved()
        self.realize()
        self.save_setup()
        if self.state is S.PRE_COPY:
            rounds = 64 + self.init // max(self.bufsize, 1)     # QEMU iterates as long as it takes
            reached = self.iterate(saved, max_rounds=rounds)
            expect(reached, "consumer.qemu-initial-data-sent",
                   f"after {rounds} pre-copy rounds QEMU's initial count is still {self.init} | {self.where()}",
                   self.dev)
        else:
            # RAM pre-copy rounds: the migration core asks every VFIO device's exact pending size too
            # (vfio_state_pending_exact checks no device state), here while the device runs.
            self.pending_exact()
        self.vm_stop()
        self.complete(saved)
        self.save_cleanup()
        return saved

    # -- device dirty tracking (hw/vfio/listener.c, container-base.c) ----------------------------
    def log_start(self, ranges: list[tuple[int, int]]) -> int:
        """log_global_start: DMA_LOGGING_START with the host page size (the written-back one is unused)."""
        code, granule = dma.start(self.dev, ranges, mmap.PAGESIZE)
        self.log.append(f"DMA_LOGGING_START({len(ranges)} ranges, {mmap.PAGESIZE}): {errno_name(code)} "
                        f"(wrote back {granule})")
        return code

    def log_sync(self, ranges: list[tuple[int, int]]) -> int:
        """A dirty-bitmap sync: DMA_LOGGING_REPORT per range with the host page size; first errno."""
        for iova, length in ranges:
            code, _, _ = dma.report(self.dev, iova, length, mmap.PAGESIZE)
            self.log.append(f"DMA_LOGGING_REPORT({iova:#x}, {length:#x}, {mmap.PAGESIZE}): {errno_name(code)}")
            if code:
                return code
        return 0

    def log_stop(self) -> int:
        code = dma.stop(self.dev)
        self.log.append(f"DMA_LOGGING_STOP: {errno_name(code)}")
        return code

    # -- destination: load setup, load state, load cleanup, vm start ----------------------------
    def load(self, saved: Saved, close_before_start: bool) -> None:
        """SET RESUMING, one write per source chunk, then the fd closed before or after vm start."""
        self.set(S.RESUMING)
        for chunk in saved.chunks():
            self.write_all(chunk, "stream.round-trip")
        if close_before_start:
            self.close_fd()              # vfio_load_cleanup on a destination that stays paused
        rule = "resume.close-keeps-data" if close_before_start else "stream.round-trip"
        if self.flags & MigFlag.P2P:
            self.set(S.RUNNING_P2P, rule=rule)
        self.set(S.RUNNING, rule=rule)
        self.close_fd()                  # load cleanup after an autostarted vm_start


class CloudHypervisor(Consumer):
    """cloud-hypervisor's VFIO migration v2 for one device (VfioCommon, VfioPciDevice)."""

    name = "cloud-hypervisor"

    def __init__(self, device, profile, kernel_release: str = ""):
        super().__init__(device, profile, kernel_release)
        self.granule = None

    def has_reset_flag(self) -> bool:
        return bool(self.dev.info().flags & 1)          # VFIO_DEVICE_FLAGS_RESET

    def create(self) -> None:
        """VfioCommon::new: GET MIGRATION. Any error is swallowed (a debug log) and the device is
        treated as non-migratable: a live migration is then refused (start_migration), but a snapshot
        (vm_snapshot never calls start_migration) and a migration with preserve_source carry no state
        of the device, and the restore succeeds without it. So a failing GET MIGRATION loses the
        device's state silently (pci/src/vfio.rs VfioCommon::new, VfioCommon::snapshot)."""
        code, flags = self.dev.try_migration_flags()
        self.log.append(f"GET MIGRATION: {errno_name(code)} flags {flags:#x}")
        expect(code == 0, "fsm.flags-valid",
               f"GET MIGRATION gave {errno_name(code)}: cloud-hypervisor treats the "
               f"device as non-migratable without an error, and its snapshots keep none of the "
               f"device's state | {self.where()}", self.dev)

    def transition(self, target: MigState, recover: MigState | None) -> int:
        """transition_migration_state_with_recovery: on failure the named state, else a reset."""
        result = self.try_set(target)
        if result.errno == 0:
            return 0
        if recover is not None and not self.in_error_and_gated() and self.try_set(recover).errno == 0:
            return result.errno
        self.reset_and_rearm()
        return result.errno

    def reset_and_rearm(self) -> None:
        """vfio-ioctls issues VFIO_DEVICE_RESET only when the device reports the RESET flag."""
        if self.has_reset_flag():
            self.reset()
        else:
            self.log.append("reset skipped: no VFIO_DEVICE_FLAGS_RESET")
        self.close_fd()

    def pause(self) -> None:
        code = self.transition(S.STOP, None)
        expect(code == 0, "fsm.legal-arc", f"pause: SET STOP failed {errno_name(code)} | {self.where()}",
               self.dev)

    def resume(self, rule: str = "fsm.legal-arc") -> None:
        code = self.transition(S.RUNNING, None)
        expect(code == 0, rule, f"resume: SET RUNNING failed {errno_name(code)} | {self.where()}", self.dev)

    def save_migration_data(self) -> Saved:
        """STOP -> STOP_COPY (recover STOP), read to the end, STOP_COPY -> STOP."""
        code = self.transition(S.STOP_COPY, S.STOP)
        expect(code == 0, "fsm.legal-arc", f"SET STOP_COPY failed {errno_name(code)} | {self.where()}",
               self.dev)
        out = Saved()
        while True:
            code, data = self.fd.try_read(CH_READ)
            self.log.append(f"read({CH_READ}): {errno_name(code)}, {len(data)} bytes")
            expect(code != errno.ENOMSG, "stream.stop-copy-eof",
                   "read() in STOP_COPY failed with ENOMSG: cloud-hypervisor's snapshot fails | "
                   + self.where(),
                   self.dev)
            expect(code == 0, "walk.model-agreement", f"read() in STOP_COPY: {errno_name(code)} | "
                                                      f"{self.where()}", self.dev)
            if not data:
                break
            out.append(data)
        code = self.transition(S.STOP, None)
        expect(code == 0, "fsm.legal-arc", f"SET STOP failed {errno_name(code)} | {self.where()}", self.dev)
        return out

    def snapshot(self) -> Saved:
        """device creation, vm pause then snapshot: RUNNING -> STOP, then save_migration_data."""
        self.create()
        self.pause()
        return self.save_migration_data()

    def restore(self, blob: Saved) -> None:
        """load_migration_data (RESUMING, recover STOP; one write, or ONE_WRITE pieces of a bigger
        blob) then resume() to RUNNING."""
        code = self.transition(S.RESUMING, S.STOP)
        expect(code == 0, "fsm.legal-arc", f"SET RESUMING failed {errno_name(code)} | {self.where()}",
               self.dev)
        self.write_saved(blob, "stream.round-trip")
        self.resume(rule="stream.round-trip")
        self.close_fd()

    # -- DMA logging (live migration) -------------------------------------------------------------
    def start_dirty_log(self, ranges: list[tuple[int, int]], page_size: int) -> int:
        code, granule = dma.start(self.dev, ranges, page_size)
        self.log.append(f"DMA_LOGGING_START({len(ranges)} ranges, {page_size}): {errno_name(code)} "
                        f"granule {granule}")
        if code == 0:
            self.granule = granule
        return code

    def dirty_log(self, ranges: list[tuple[int, int]]) -> int:
        """One REPORT per range with the granule START wrote back; the first errno, else 0."""
        for iova, length in ranges:
            code, _, _ = dma.report(self.dev, iova, length, self.granule)
            self.log.append(f"DMA_LOGGING_REPORT({iova:#x}, {length:#x}, {self.granule}): {errno_name(code)}")
            if code:
                return code
        return 0

    def stop_dirty_log(self) -> int:
        """DMA_LOGGING_STOP (VfioCommon::stop_dirty_log forgets the granule first, so after a failed
        STOP it believes logging stopped)."""
        if self.granule is None:
            return 0
        self.granule = None
        code = dma.stop(self.dev)
        self.log.append(f"DMA_LOGGING_STOP: {errno_name(code)}")
        return code


def _with_tail(pieces, tail: bytes):
    yield from pieces
    if tail:
        yield tail


def expect_running(consumer: Consumer, rule: str, context: str) -> None:
    expect_state(consumer.dev, S.RUNNING, rule, f"{context} | {consumer.where()}")
