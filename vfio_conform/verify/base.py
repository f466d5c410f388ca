"""The verify hook interface, and the stream cut/flip points used when a device's format is unknown."""
from __future__ import annotations


class Verifier:
    """Writes a tag into a device's migrated state and checks it; knows the stream header's fields."""

    name = "none"
    available = True
    #: Offsets where header fields end (truncation points) and header bytes the driver must check.
    header_cuts: tuple[int, ...] = (0, 1, 8, 16, 24)
    header_flips: tuple[int, ...] = (0, 4)

    def write(self, device, tag: int) -> None:
        """Put state derived from `tag` into the device (it must be RUNNING)."""
        raise NotImplementedError

    def check(self, device, tag: int) -> list[str]:
        """Problems found comparing the device with the state `tag` wrote (empty: it matches)."""
        raise NotImplementedError

    def cuts(self, length: int) -> list[int]:
        """Truncation points for a stream of `length` bytes (always includes length - 1)."""
        return sorted({c for c in (*self.header_cuts, length - 1) if 0 <= c < length})

    def flips(self, length: int) -> list[int]:
        """Byte offsets whose corruption the driver must detect."""
        return sorted({f for f in self.header_flips if 0 <= f < length})

    def record_offsets(self, read, length: int, limit: int = 1 << 16) -> list[int]:
        """Where the stream's records start, read through `read(offset, size)` (at most `limit`);
        empty when the hook does not know the format (the suites then use the device's read ends)."""
        return []


class NoVerify(Verifier):
    """No hook: round trips check only that the resume is accepted."""

    available = False

    def write(self, device, tag: int) -> None:
        return None

    def check(self, device, tag: int) -> list[str]:
        return []
