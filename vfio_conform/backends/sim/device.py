"""SimDevice: the reference device model (regions, v2 migration FSM for any flag set, sessions).

It speaks in states, bytes and OSErrors; `SimTransport` decodes the uAPI buffers on top of it.
`set_state` takes one arc at a time with `model.fsm.next_step`, as a 6.12 driver loop does.
"""
from __future__ import annotations

import errno
import functools
import random

from ...model.fsm import (PRE_COPY_STATES, SAVING_GROUP, SESSION_ENDING_ARCS, SESSION_OPENING_ARCS,
                          BlockedArc, next_step, supports)
from ...uapi.enums import MIG_STATE_NR, MigFlag, MigState, PciRegion
from . import bigstate, flr, kmsg, mismatch, serverlog, stream
from .config import SimConfig
from .faults import ActiveFaults
from .regions import Region, oserror
from .dma import DmaLog, DmaMaps
from .sessions import PrecopySession, ResumingSession, SavingSession, Session, StraySession
from .v1 import V1Region

S = MigState
_PRECOPY_OPENING = frozenset({(S.RUNNING, S.PRE_COPY), (S.RUNNING_P2P, S.PRE_COPY_P2P)})


@functools.lru_cache(maxsize=None)
def _step_table(flags: int) -> dict[tuple[int, int], MigState | Exception]:
    """`next_step(cur, new, flags)` for every cur/new < NR, errors included (memoised: SETs are hot)."""
    table: dict[tuple[int, int], MigState | Exception] = {}
    for cur in MigState:
        for new in range(MIG_STATE_NR):
            try:
                table[cur, new] = next_step(cur, new, flags)
            except (ValueError, BlockedArc) as exc:
                table[cur, new] = exc
    return table


class SimDevice:
    """One simulated VFIO device with migration `config.flags`, starting in RUNNING.

    Attributes:
        state: the true migration state (GET may lie only under a fault knob).
        last_path: the single steps the last SET took (empty for a no-op or a rejection).
        session: the current saving or resuming session, if any.
        faults: the configured knobs; `faults.fired` lists those that changed behaviour.
    """

    def __init__(self, config: SimConfig, name: str):
        self.config = config
        self.name = name
        self.flags = config.flags
        self.faults = ActiveFaults(config.faults)
        rng = random.Random(config.seed_for(name))
        #: a large state is generated block by block, never held (self.internal stays empty)
        self.generated = bigstate.GeneratedState(config.state_size, config.seed_for(name)) \
            if config.generated_state else None
        self.internal = b"" if self.generated else rng.randbytes(config.state_size)
        self.regions = [Region(spec, name, rng) for spec in config.regions]
        if config.pcie_flr and len(self.regions) > PciRegion.CONFIG and self.regions[PciRegion.CONFIG].fd >= 0:
            flr.install(self.regions[PciRegion.CONFIG])
        self.layout = stream.StreamLayout(
            config.state_size, tuple((r.spec.index, r.spec.size) for r in self.regions if r.spec.migrates))
        self.state = S.RUNNING
        self.session: Session | None = None
        self.last_path: tuple[MigState, ...] = ()
        self._reports_running = False        # wrong_state_after_set knob
        self.dma = DmaLog(self.faults)        # DMA dirty logging
        self.dma_maps = DmaMaps(self.faults)  # the client memory mapped for DMA
        self.dma.maps = self.dma_maps
        self._resume_carry = b""             # reset_keeps_resume_data knob
        self._empty_next_save = False        # reset_breaks_save knob
        self.fail_step: int | None = None     # test hook: the next SET fails at this step (1-based)
        self.v1 = self._attach_regions()

    def _attach_regions(self) -> V1Region | None:
        """Give every region the device's knobs; swap in the legacy v1 migration region if configured."""
        for region in self.regions:
            region.faults = self.faults
        cfg = self.config.v1
        if cfg is None:
            return None
        self.regions[cfg.index].close()
        region = V1Region(cfg.spec(), self.name, random.Random(0), self, cfg)
        region.faults = self.faults
        self.regions[cfg.index] = region
        return region

    @property
    def dma_logging_started(self) -> bool:
        return self.dma.started

    @property
    def fired(self) -> list[str]:
        return self.faults.fired

    # -- queries -------------------------------------------------------------------------
    def migration_flags(self) -> int:
        """What MIGRATION GET reports."""
        if self.faults.fire("wrong_migration_flags"):
            return self.flags ^ MigFlag.P2P
        if self.faults.fire("reserved_migration_flag"):
            return self.flags | 1 << 3
        return self.flags

    def get_state(self) -> int:
        """What MIG_DEVICE_STATE GET reports."""
        if self._reports_running and self.faults.fire("wrong_state_after_set"):
            return S.RUNNING
        if self.state == S.STOP_COPY and self.faults.fire("get_state_fails_in_stop_copy"):
            raise oserror(errno.EIO, "GET MIG_DEVICE_STATE in STOP_COPY")
        return self.state

    def data_size(self) -> int:
        """MIG_DATA_SIZE: exact STOP_COPY stream length (header + payload), any state, or the
        configured data_size_report."""
        size = self.layout.stream_len if self.generated is None else \
            bigstate.stop_copy_len(self.generated, self.layout.payload_len - self.layout.state_size)
        if self.config.data_size_report is not None:
            size = self.config.data_size_report
        if self.state in (S.RESUMING, *PRE_COPY_STATES) and self.faults.fire("data_size_only_stopped"):
            raise oserror(errno.EINVAL, f"MIG_DATA_SIZE in {self.state.name}")
        if self.state in PRE_COPY_STATES and self.faults.fire("data_size_fails_precopy"):
            raise oserror(errno.EIO, f"MIG_DATA_SIZE in {self.state.name}")
        if self.state in (S.RUNNING, S.RUNNING_P2P) and self.faults.fire("data_size_fails_running"):
            raise oserror(errno.EIO, f"MIG_DATA_SIZE in {self.state.name}")
        if self.faults.fire("wrong_data_size"):
            return 2 * size + 4096
        return size

    def payload(self) -> bytes:
        """The migrated state now: internal block, then the migrated regions in index order."""
        contents = {r.spec.index: r.snapshot() for r in self.regions if r.spec.migrates}
        return stream.join(self.layout, self.internal, contents)

    def region_payload(self) -> bytes:
        """The migrated regions' contents in index order (the payload after the internal block)."""
        return b"".join(r.snapshot() for r in self.regions if r.spec.migrates)

    def stop_copy_stream(self) -> bytes:
        """The full STOP_COPY stream of the current contents."""
        return stream.encode(self.layout, self.payload())

    # -- the FSM -------------------------------------------------------------------------
    def set_state(self, target: int) -> Session | None:
        """SET MIG_DEVICE_STATE: walk single arcs to `target`; the session opened by the last arc, if any.

        Raises OSError: EINVAL for unsupported/ERROR/blocked/out-of-range targets (state unchanged)
        and for a RESUMING->STOP with an invalid stream (state stays at the last completed step).
        """
        faults = self.faults
        self.last_path = ()
        fail_step, self.fail_step = self.fail_step, None
        if target >= MIG_STATE_NR and faults.fire("out_of_range_truncated"):
            target = target & 0x7            # a driver that keeps only the low bits of the request
        if target == self.state:
            if faults.fire("same_state_not_noop"):
                raise oserror(errno.EBUSY, f"SET {MigState.label(target)} while already in it")
            return None
        if target == MIG_STATE_NR and faults.fire("out_of_range_reads_past_table"):
            # a bound check of `> NR` (libvfio-user's migration_set_state()): the request is still
            # refused, by luck, from the next row of the step table, which the sanitizer reports
            serverlog.ubsan("lib/migration.c:276:33", f"index {MIG_STATE_NR} out of bounds for type "
                            f"'const uint32_t [{MIG_STATE_NR}]'", ("migration_set_state", "handle_mig_state"))
        if target >= MIG_STATE_NR and faults.fire("out_of_range_accepted"):
            raise oserror(errno.ERANGE, f"SET {MigState.label(target)}")
        opened, steps, table = None, 0, _step_table(self.flags)
        start = self.state
        while self.state != target:
            step = table.get((self.state, target), None)
            if step is None:
                step = ValueError(f"{MigState.label(target)} is out of range")
            if isinstance(step, Exception):
                if steps:        # never happens with the 6.12 table; a driver would stop here
                    raise oserror(errno.EINVAL, f"after {steps} steps: {step}")
                return self._reject(target, f"{type(step).__name__}: {step}")
            steps += 1
            try:
                if fail_step == steps:
                    raise oserror(errno.EIO, f"step {steps} ({self.state.name}->{step.name}) failed "
                                             "(test hook)")
                opened = self._take_arc(self.state, step)
            except OSError:
                self._failed_part_way(start, target)
                raise
            if opened is not None and step != target:
                raise oserror(errno.EINVAL, f"driver returned a file on interior step {step.name}")
            arc, self.state = f"{self.state.name}->{step.name}", step
            self.last_path += (step,)
            if "warn_on_arc" in faults and faults.param("warn_on_arc", "arc") == arc \
                    and faults.fire("warn_on_arc"):
                kmsg.warn(f"sim: {arc} (injected warning)", "sim_step_state+0x42/0x80")
        self._reports_running = target == S.STOP
        if target == S.STOP and opened is None and faults.fire("fd_on_non_opening_arc"):
            return StraySession(faults)
        return opened

    def _failed_part_way(self, start: MigState, target: int) -> None:
        """An arc of a SET failed: the state stays at the last completed step (the knob moves it off
        the path, to a state neither the start, a step of the path nor ERROR)."""
        if not self.faults.fire("failed_path_leaves_path"):
            return
        path = {start, *self.last_path}
        try:
            state = start
            while state != target:
                state = next_step(state, target, self.flags)
                path.add(state)
        except (ValueError, BlockedArc):
            pass
        off = [s for s in MigState if self.supports(s) and s not in path]
        if off:
            self._force_state(off[0])

    def _reject(self, target: int, why: str) -> Session | None:
        """A SET refused before any step (the fault knobs bend this one decision)."""
        faults = self.faults
        if target < MIG_STATE_NR and faults.fire("accept_illegal_arc"):
            self._force_state(MigState(target))
            return None
        if faults.fire("move_state_on_failed_set"):
            self._force_state(S.STOP)
        if self.session is not None and faults.fire("rejected_set_ends_session"):
            self._end_session()
        code = errno.EINVAL
        if target < MIG_STATE_NR and faults.fire("wrong_errno"):
            code = int(faults.param("wrong_errno", "errno"))
        raise oserror(code, f"SET {MigState.label(target)} from {self.state.name}: {why}")

    def _take_arc(self, cur: MigState, nxt: MigState) -> Session | None:
        """The driver's work for one single arc; returns a new session on an opening arc."""
        arc = (cur, nxt)
        if cur in PRE_COPY_STATES and nxt == S.STOP_COPY and self.faults.fire("legal_arc_fails"):
            raise oserror(errno.EIO, f"{cur.name} -> STOP_COPY")
        if arc == (S.RESUMING, S.STOP):
            self._commit_resume()
        if arc in SESSION_ENDING_ARCS:
            self._end_session()
        if arc in SESSION_OPENING_ARCS:
            return self._open_session(arc)
        if cur in PRE_COPY_STATES and nxt == S.STOP_COPY and isinstance(self.session, SavingSession):
            if self.faults.fire("saving_group_drops_fd"):
                self._end_session()
            else:
                self.session.enter_stop_copy()
        return None

    def _open_session(self, arc: tuple[MigState, MigState]) -> Session | None:
        self._end_session()
        if self.generated is not None:
            return self._open_generated(arc)
        if arc == (S.STOP, S.RESUMING):
            self.session = mismatch.resuming_session(self.faults, self.layout)
            self.session.buf += self._resume_carry
            self._resume_carry = b""
            return None if self.faults.fire("no_fd_on_opening_arc") else self.session
        if arc in _PRECOPY_OPENING:         # v2 stream: dirty tracking against the live contents
            self.session = PrecopySession(self.faults, self.layout, self.payload, self.config.precopy_bytes,
                                          self.config.precopy_end)
            return self.session
        data = self.stop_copy_stream()
        if self._empty_next_save:
            data, self._empty_next_save = b"", False
        self.session = SavingSession(self.faults, data, None, self.config.precopy_end)
        return self.session

    def _open_generated(self, arc: tuple[MigState, MigState]) -> Session:
        """Sessions of a generated state: streamed record by record, never held in memory."""
        if arc == (S.STOP, S.RESUMING):
            self.session = bigstate.GeneratedResumingSession(
                self.faults, self.layout, self.layout.payload_len - self.layout.state_size)
        else:
            self.session = bigstate.GeneratedSavingSession(
                self.faults, self.layout, self.generated, self.region_payload, arc in _PRECOPY_OPENING,
                self.config.dirty_blocks, self.config.precopy_end)
        return self.session

    def _commit_resume(self) -> None:
        """RESUMING->STOP: validate the whole stream and load it, or EINVAL (state stays RESUMING)."""
        session = self.session
        if isinstance(session, bigstate.GeneratedResumingSession):
            try:
                self.generated, regions = session.result()
            except stream.StreamError as exc:
                raise oserror(errno.EINVAL, f"RESUMING->STOP: {exc}") from None
            pos = 0
            for region in self.regions:
                if region.spec.migrates:
                    region.load(regions[pos:pos + region.spec.size])
                    pos += region.spec.size
            return
        if not isinstance(session, ResumingSession):
            return
        try:
            payload = session.payload()
        except stream.StreamError as exc:
            if self.faults.fire("accept_incomplete_resume"):
                return
            raise oserror(errno.EINVAL, f"RESUMING->STOP: {exc}") from None
        if self.faults.fire("resume_refuses_valid_stream"):
            raise oserror(errno.EINVAL, "RESUMING->STOP of a valid stream")
        internal, contents = stream.split(self.layout, payload)
        self.internal = internal
        if self.faults.fire("resume_skips_regions"):
            return
        for region in self.regions:
            if region.spec.index in contents:
                region.load(contents[region.spec.index])

    def _end_session(self) -> None:
        if self.session is not None:
            self.session.end()
            self.session = None

    def _force_state(self, state: MigState) -> None:
        """Jump (fault knobs only), ending a session the new state cannot hold."""
        keeps = (isinstance(self.session, SavingSession) and state in SAVING_GROUP) or \
                (isinstance(self.session, ResumingSession) and state == S.RESUMING)
        if not keeps:
            self._end_session()
        self.state = state

    # -- saving-fd queries, reset, close ----------------------------------------------------
    def precopy_info(self, session: SavingSession) -> tuple[int, int]:
        """(initial_bytes, dirty_bytes) for VFIO_MIG_GET_PRECOPY_INFO on `session`'s fd."""
        if self.state not in PRE_COPY_STATES and not self.faults.fire("precopy_info_any_state"):
            raise oserror(errno.EINVAL, f"PRECOPY_INFO in {self.state.name}")
        if self.faults.fire("precopy_info_fails"):
            raise oserror(errno.EIO, f"PRECOPY_INFO in {self.state.name} (mandatory with PRE_COPY)")
        if self.state == S.PRE_COPY_P2P and self.faults.fire("precopy_info_fails_in_p2p"):
            raise oserror(errno.EINVAL, "PRECOPY_INFO in PRE_COPY_P2P (like hisi: PRE_COPY only)")
        if not session.active:
            raise oserror(errno.ENODEV, "PRECOPY_INFO on the data fd of an ended session")
        return session.initial_bytes(), session.dirty_bytes()

    def reset(self) -> None:
        """VFIO_DEVICE_RESET: RUNNING, every session ended (region contents are kept, like mtty)."""
        if not self.config.reset_supported:
            raise oserror(errno.EINVAL, "device lacks VFIO_DEVICE_FLAGS_RESET")
        self._reports_running = False
        if isinstance(self.session, ResumingSession) and self.faults.fire("reset_keeps_resume_data"):
            self._resume_carry = bytes(self.session.buf)
        if self.faults.fire("reset_breaks_save"):
            self._empty_next_save = True
        if self.session is not None and self.faults.fire("reset_keeps_state"):
            self._end_session()
            return
        self._end_session()
        self.state = S.RUNNING
        self.dma.stop()
        if self.v1 is not None:
            self.v1.reset()

    def close(self) -> None:
        if not self.faults.fire("close_keeps_session"):
            self._end_session()
        for region in self.regions:
            region.close()

    def supports(self, state: int) -> bool:
        return supports(self.flags, state)

    def __repr__(self) -> str:
        return f"SimDevice({self.name}, flags={self.flags}, {self.state.name}, faults={self.faults})"
