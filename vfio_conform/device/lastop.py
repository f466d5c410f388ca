"""The device operation this process started last (named when a test times out)."""
from __future__ import annotations

import collections
import time
from collections.abc import Iterable
from typing import Any

from ..uapi.enums import Feature, FeatureOp, MigState
from .records import _feature_name


#: The errno a trail records for an operation a timeout interrupted (it never returned).
INTERRUPTED = -1


class _LastOperation:
    """The device operation this process started last (named when a test times out)."""

    #: (device, what, started): one attribute, so the hot path records an operation with one store
    op: tuple[str, tuple[Any, ...], float] = ("", (), 0.0)
    #: the `op` that last came back (a value or an errno); `op is not done` while one is in flight,
    #: and still when a timeout interrupted it, i.e. the operation never returned.
    done: tuple[str, tuple[Any, ...], float] = op
    #: the operations of the current test, when an output asked for them (Allure shows a failing
    #: test's operations as steps; `record(n)`), else None: the hot path then pays one attribute
    #: test per operation. Each entry is an `op` as it returned; an errno (an int) follows the op
    #: that came back with it (most come back with 0: nothing more is kept for them). `pairs` reads it.
    trail: collections.deque[tuple[str, tuple[Any, ...], float] | int] | None = None

    @property
    def device(self) -> str:
        return self.op[0]

    @property
    def what(self) -> tuple[Any, ...]:
        return self.op[1]

    @property
    def started(self) -> float:
        return self.op[2]

    @property
    def in_progress(self) -> bool:
        return self.op is not self.done

    def note(self, device: str, *what: Any) -> None:
        self.op = (device, what, time.monotonic())

    #: the trail's append while one is kept, else None (every device operation of a run passes here,
    #: and the SET path calls it inline: one lookup less than trail.append)
    keep: Any = None

    def returned(self, code: int = 0) -> None:
        """The noted operation came back (with a value, or the errno `code`)."""
        op = self.done = self.op
        if self.keep is not None:
            self.keep(op)
            if code:
                self.keep(code)

    def record(self, last: int | None) -> None:
        """Keep the last `last` operations in `trail` from now on (a fresh one); None: keep none."""
        self.trail = collections.deque(maxlen=last) if last is not None else None
        self.keep = self.trail.append if self.trail is not None else None

    def taken(self) -> collections.deque[tuple[str, tuple[Any, ...], float] | int] | None:
        """The trail kept so far, no longer kept from now on."""
        trail, self.trail, self.keep = self.trail, None, None
        return trail

    def describe(self) -> str:
        if not self.what:
            return "no device operation yet"
        return (f"{describe_operation(self.what)} on {self.device}, "
                f"started {time.monotonic() - self.started:.1f}s ago")


def pairs(trail: Iterable[tuple[str, tuple[Any, ...], float] | int]) -> tuple[tuple[tuple[str, tuple[Any, ...], float], int], ...]:
    """A trail as (op, errno) per operation, in order (an errno the window cut from its op is dropped)."""
    out: list[tuple[tuple[str, tuple[Any, ...], float], int]] = []
    for entry in trail:
        if isinstance(entry, int):
            if out:
                out[-1] = (out[-1][0], entry)
        else:
            out.append((entry, 0))
    return tuple(out)


def describe_operation(what: tuple[Any, ...]) -> str:
    """'SET MIG_DEVICE_STATE STOP_COPY', 'VFIO_DEVICE_FEATURE(MIGRATION, op=0x10000)', 'read(data_fd)(4096)'."""
    kind, *args = what
    if kind == "set":
        text = f"SET MIG_DEVICE_STATE {MigState.label(args[0])}"
    elif kind == "feature":
        feature, op, payload = args
        text = f"VFIO_DEVICE_FEATURE({_feature_name(feature)}, op={op:#x})"
        if feature == Feature.MIG_DEVICE_STATE and op & FeatureOp.SET and len(payload) >= 4:
            text = f"SET MIG_DEVICE_STATE {MigState.label(int.from_bytes(payload[:4], 'little'))}"
        elif feature == Feature.MIG_DEVICE_STATE and op & FeatureOp.GET:
            text = "GET MIG_DEVICE_STATE"
    else:
        text = f"{kind}({', '.join(str(a) for a in args)})"
    return text


LAST_OPERATION = _LastOperation()


def last_operation() -> str:
    """'SET MIG_DEVICE_STATE STOP_COPY on sim0, started 2.0s ago' (or 'no device operation yet')."""
    return LAST_OPERATION.describe()
