"""The device operation this process started last (named when a test times out)."""
from __future__ import annotations

import time

from ..uapi.enums import Feature, FeatureOp, MigState
from .records import _feature_name


class _LastOperation:
    """The device operation this process started last (named when a test times out)."""

    device = ""
    what: tuple = ()
    started = 0.0
    #: True from note() until the operation returned (a value or an errno): still True when a
    #: timeout interrupted it, i.e. the operation never returned.
    in_progress = False

    def note(self, device: str, *what) -> None:
        self.device, self.what, self.started = device, what, time.monotonic()
        self.in_progress = True

    def returned(self) -> None:
        """The noted operation came back (with a value or an errno)."""
        self.in_progress = False

    def describe(self) -> str:
        if not self.what:
            return "no device operation yet"
        kind, *args = self.what
        if kind == "feature":
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
