"""Random walks: a hypothesis RuleBasedStateMachine driving one device and the reference model in step.

Every action's observable result (errno, data_fd presence, GET state, ENODEV on ended sessions) is
compared with the model; the log of the failing example is a replayable sequence of Device calls.
"""
from __future__ import annotations

import dataclasses
import errno

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ..checks import expect
from ...base.errors import errno_name
from ...model.fsm import PRE_COPY_STATES, SESSION_ENDING_ARCS, SESSION_OPENING_ARCS
from ...model.plan import plan
from ...uapi.enums import MIG_STATE_NR, MigState

S = MigState
READ_SIZES = (1, 7, 513, 4097, (1 << 16) + 1)      # odd sizes on purpose


@dataclasses.dataclass
class FdModel:
    """One data_fd and its session as the model sees them.

    The session and the fd have separate lifetimes: `active` ends with the session (a session-ending
    arc or a reset), `closed` is the user's close() of the fd. Closing the fd ends nothing: the bytes
    already written to a resuming session stay written (QEMU's destination closes the fd in its load
    cleanup, possibly before it leaves RESUMING), so RESUMING -> STOP is judged on `written`.
    """

    name: str
    fd: object
    kind: str                  # "saving" or "resuming"
    active: bool = True
    written: int = 0
    closed: bool = False


@dataclasses.dataclass
class WalkContext:
    """What every walk needs: the device, its profile, a valid stream for it, the hazard gate."""

    device: object
    profile: object
    stream: object          # a saved stream: len() and [a:b] slices (suitelib/spill.py SavedStream)
    kernel_release: str


# -- invariants (plain functions: the machine calls them after every step) ---------------------------
def state_matches_model(device, model_state: MigState, log: list[str]) -> None:
    """vfio.h: "the driver must not change state asynchronously, except through VFIO_DEVICE_RESET",
    so GET MIG_DEVICE_STATE always reports the state the model reached."""
    code, state, fd = device.get_state_raw()
    expect(code == 0 and state == model_state, "fsm.state-after-set",
           f"GET reports {MigState.label(state)} ({errno_name(code)}), the model is in "
           f"{model_state.name}{replay(log)}", device)


def get_returns_no_fd(device, log: list[str]) -> None:
    """vfio_main.c: MIG_DEVICE_STATE GET "writes back device_state and data_fd = -1"."""
    _, _, fd = device.get_state_raw()
    expect(fd == -1, "fsm.no-data-fd-otherwise", f"GET wrote back data_fd {fd}{replay(log)}", device)


def replay(log: list[str]) -> str:
    """The sequence so far, as Python a person can paste against a Device (stream = a saved stream)."""
    body = "\n    ".join(["device.reset()  # start of the walk", *log])
    return f"\nreplayable sequence:\n    {body}"


class DeviceWalk(RuleBasedStateMachine):
    """One random walk; construct through `factory(ctx)` (hypothesis calls it once per example)."""

    def __init__(self, ctx: WalkContext):
        super().__init__()
        self.ctx, self.dev, self.flags = ctx, ctx.device, int(ctx.profile.flags)
        self.log: list[str] = []
        self.fds: list[FdModel] = []
        self.counter = 0
        code = self.dev.try_reset()
        expect(code == 0, "reset.returns-running", f"VFIO_DEVICE_RESET failed: {errno_name(code)}", self.dev)
        self.state = S.RUNNING

    # -- helpers ---------------------------------------------------------------------------------
    def _pick(self, index: int) -> FdModel | None:
        """An fd the user still holds (closed ones cannot be read, written or closed again)."""
        open_fds = [f for f in self.fds if not f.closed]
        return open_fds[index % len(open_fds)] if open_fds else None

    def _live(self, kind: str) -> FdModel | None:
        """The live session of `kind`, whether or not its fd is still open."""
        return next((f for f in self.fds if f.active and f.kind == kind), None)

    def _end_sessions(self) -> None:
        for f in self.fds:
            f.active = False
        self.fds = [f for f in self.fds if not f.closed]     # nothing left to model for these

    def _fail(self, rule_id: str, message: str) -> None:
        expect(False, rule_id, message + replay(self.log), self.dev)

    # -- rules -------------------------------------------------------------------------------------
    @precondition(lambda self: self.state is not S.ERROR)
    @rule(request=st.integers(0, MIG_STATE_NR))
    def set_state(self, request: int) -> None:
        """SET any value (ERROR and out of range included) unless the request is a gated hazard."""
        target = request
        p = plan(self.state, target, self.flags)
        what = f"SET {MigState.label(target)} from {self.state.name}"
        if p.hazard and not self.ctx.profile.hazard_safe(p.hazard.name, self.ctx.kernel_release):
            self.log.append(f"# skipped {what}: hazard {p.hazard.name}")
            return
        resuming = self._live("resuming")
        leaves_resume = self.state is S.RESUMING and p.legal and bool(p.path)
        complete = resuming is not None and resuming.written == len(self.ctx.stream)
        result = self.dev.try_set_state(target)
        name = None
        if result.data_fd is not None:
            self.counter += 1
            name = f"f{self.counter}"
        self.log.append(f"{name + ' = ' if name else ''}device.try_set_state({target})"
                        f"  # {what}: {errno_name(result.errno)}")
        if leaves_resume and not complete:
            code, state, _ = self.dev.get_state_raw()
            if result.data_fd is not None:
                result.data_fd.close()
            if result.errno == 0:
                self._fail("resume.incomplete-stream-fails",
                           f"{what} succeeded after {resuming.written if resuming else 0} of "
                           f"{len(self.ctx.stream)} stream bytes")
            if state not in (S.RESUMING, S.ERROR):
                self._fail("fsm.failed-path-on-path",
                           f"{what} failed ({errno_name(result.errno)}) on an incomplete stream; "
                           f"state is {MigState.label(state)}")
            self.state = MigState(state)
            return
        if leaves_resume and complete and resuming.closed and result.errno:
            self._fail("resume.close-keeps-data",
                       f"{what} failed ({errno_name(result.errno)}) after the whole stream was written "
                       f"to {resuming.name} and {resuming.name} was closed")
        rule_id = ("fsm.out-of-range-einval" if target >= MIG_STATE_NR else
                   "fsm.illegal-arc-einval" if not p.legal else
                   "fsm.same-state-noop" if p.noop else "fsm.legal-arc")
        if result.errno != p.errno:
            if result.data_fd is not None:
                result.data_fd.close()
            self._fail(rule_id, f"{what}: expected {errno_name(p.errno)}, got {errno_name(result.errno)}")
        if (result.data_fd is not None) != p.data_fd:
            if result.data_fd is not None:
                result.data_fd.close()
            self._fail("fsm.data-fd-on-opening-arc" if p.data_fd else "fsm.no-data-fd-otherwise",
                       f"{what} ({p.describe()}) returned data_fd: {result.data_fd is not None}")
        steps = (self.state, *p.path)
        for arc in zip(steps, steps[1:]):
            if arc in SESSION_ENDING_ARCS:
                self._end_sessions()
        if result.data_fd is not None:
            opened = (steps[-2], steps[-1])
            kind = "resuming" if opened == (S.STOP, S.RESUMING) else "saving"
            assert opened in SESSION_OPENING_ARCS
            self._end_sessions()
            self.fds.append(FdModel(name, result.data_fd, kind))
        self.state = p.state_after

    @rule(index=st.integers(0, 7), size=st.sampled_from(READ_SIZES))
    def read(self, index: int, size: int) -> None:
        """read() on a data_fd: EBADF on a resuming fd, ENODEV once ended, else data/0/ENOMSG."""
        f = self._pick(index)
        if f is None:
            return
        code, data = f.fd.try_read(size)
        self.log.append(f"{f.name}.try_read({size})  # {errno_name(code)}, {len(data)} bytes")
        if f.kind == "resuming":
            if code != errno.EBADF:
                self._fail("stream.resuming-fd-not-readable", f"read() on resuming {f.name}: {errno_name(code)}")
        elif not f.active:
            if code != errno.ENODEV:
                self._fail("stream.ended-session-enodev", f"read() on ended {f.name}: {errno_name(code)}")
        elif not (code == 0 or (code == errno.ENOMSG and self.state in PRE_COPY_STATES)):
            self._fail("walk.model-agreement", f"read({size}) on live {f.name} in {self.state.name}: "
                                               f"{errno_name(code)}")

    @rule(index=st.integers(0, 7), size=st.sampled_from((1, 13, 100, 4099, 1 << 20)))
    def write(self, index: int, size: int) -> None:
        """write() of the next part of a valid stream: EBADF on a saving fd, ENODEV once ended."""
        f = self._pick(index)
        if f is None:
            return
        piece = self.ctx.stream[f.written:f.written + size] if f.kind == "resuming" else b"\0" * 8
        if f.kind == "resuming" and f.active and not piece:
            return
        code, n = f.fd.try_write(piece)
        self.log.append(f"{f.name}.try_write(stream[{f.written}:{f.written + len(piece)}])  "
                        f"# {errno_name(code)}, {n} bytes")
        if f.kind == "saving":
            if code != errno.EBADF:
                self._fail("stream.saving-fd-not-writable", f"write() on saving {f.name}: {errno_name(code)}")
        elif not f.active:
            if code != errno.ENODEV:
                self._fail("stream.ended-session-enodev", f"write() on ended {f.name}: {errno_name(code)}")
        elif code or n <= 0:
            self._fail("walk.model-agreement", f"write of valid stream bytes on live {f.name}: "
                                               f"{errno_name(code)} ({n} bytes)")
        else:
            f.written += n

    @rule(index=st.integers(0, 7))
    def precopy_info(self, index: int) -> None:
        """VFIO_MIG_GET_PRECOPY_INFO: 0 on a live saving fd in PRE_COPY(_P2P), else an error."""
        f = self._pick(index)
        if f is None or f.kind != "saving":
            return
        code, _ = f.fd.try_precopy_info()
        self.log.append(f"{f.name}.try_precopy_info()  # {errno_name(code)}")
        live_pre = f.active and self.state in PRE_COPY_STATES
        if live_pre and code:
            self._fail("walk.model-agreement", f"PRECOPY_INFO on live {f.name} in {self.state.name}: "
                                               f"{errno_name(code)}")
        if not live_pre and code not in (errno.EINVAL, errno.ENODEV):
            self._fail("precopy.info-only-in-precopy",
                       f"PRECOPY_INFO on {'live' if f.active else 'ended'} {f.name} in {self.state.name}: "
                       f"{errno_name(code)}, expected EINVAL")

    @rule(index=st.integers(0, 7))
    def close(self, index: int) -> None:
        """close() a data_fd: the migration state does not change."""
        f = self._pick(index)
        if f is None:
            return
        f.fd.close()
        f.closed = True              # the session (and what was written to it) lives on
        self.log.append(f"{f.name}.close()")
        code, state, _ = self.dev.get_state_raw()
        if state != self.state:
            self._fail("session.close-keeps-state",
                       f"closing {'live' if f.active else 'ended'} {f.name} moved {self.state.name} -> "
                       f"{MigState.label(state)}")

    @precondition(lambda self: self.ctx.profile.reset)
    @rule()
    def reset(self) -> None:
        """VFIO_DEVICE_RESET: RUNNING, every session ended."""
        code = self.dev.try_reset()
        self.log.append(f"device.try_reset()  # {errno_name(code)}")
        if code:
            self._fail("reset.returns-running", f"VFIO_DEVICE_RESET: {errno_name(code)}")
        self._end_sessions()
        self.state = S.RUNNING

    @invariant()
    def observable_state(self) -> None:
        state_matches_model(self.dev, self.state, self.log)
        get_returns_no_fd(self.dev, self.log)

    def teardown(self) -> None:
        for f in self.fds:
            if not f.closed:
                f.fd.close()
        self.fds.clear()
        self.dev.try_reset()


def run_walks(ctx: WalkContext, examples: int, steps: int, seed: int) -> None:
    """Run `examples` walks of up to `steps` actions, reproducibly from `seed` (raises on a finding)."""
    from hypothesis import HealthCheck, settings
    from hypothesis import seed as use_seed
    from hypothesis.stateful import get_state_machine_test
    conf = settings(max_examples=examples, stateful_step_count=steps, deadline=None, database=None,
                    derandomize=False, suppress_health_check=list(HealthCheck), print_blob=False)
    test = get_state_machine_test(lambda: DeviceWalk(ctx), settings=conf)
    use_seed(seed)(test)()
