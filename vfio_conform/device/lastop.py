"""The device operation this process started last (named when a test times out)."""
from __future__ import annotations

import time
from typing import Any

from ..uapi.enums import Feature, FeatureOp, MigState
from .records import _feature_name


class _LastOperation:
    """The device operation this process started last (named when a test times out)."""

    #: (device, what, started): one attribute, so the hot path records an operation with one store
    op: tuple[str, tuple[Any, ...], float] = ("", (), 0.0)
    #: the `op` that last came back (a value or an errno); `op is not done` while one is in flight,
    #: and still when a timeout interrupted it, i.e. the operation never returned.
    done: tuple[str, tuple[Any, ...], float] = op

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

    def returned(self) -> None:
        """The noted operation came back (with a value or an errno)."""
        self.done = self.op

    def describe(self) -> str:
        if not self.what:
            return "no device operation yet"
        kind, *args = self.what
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
        return f"{text} on {self.device}, started {time.monotonic() - self.started:.1f}s ago"


LAST_OPERATION = _LastOperation()


def last_operation() -> str:
    """'SET MIG_DEVICE_STATE STOP_COPY on sim0, started 2.0s ago' (or 'no device operation yet')."""
    return LAST_OPERATION.describe()
