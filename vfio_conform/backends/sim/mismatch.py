"""The v2 resuming session under the foreign_layout_accepted knob: any stream loads, fitted to the layout."""
from __future__ import annotations

from . import stream
from .faults import ActiveFaults
from .sessions import ResumingSession


class ForeignLayoutSession(ResumingSession):
    """Skips the header check and pads or truncates a foreign payload (the silent-success bug)."""

    def write(self, data: bytes) -> int:
        self._live("write()")
        self.buf += data
        return len(data)

    def payload(self) -> bytes:
        try:
            return super().payload()
        except stream.StreamError:
            self.faults.fire("foreign_layout_accepted")
            body = bytes(self.buf[stream.HEADER_LEN:self.layout.stream_len])
            return body + bytes(self.layout.payload_len - len(body))


def resuming_session(faults: ActiveFaults, layout: stream.StreamLayout) -> ResumingSession:
    """The session STOP->RESUMING opens."""
    if "foreign_layout_accepted" in faults:
        return ForeignLayoutSession(faults, layout)
    return ResumingSession(faults, layout)
