"""Which profile describes a device found on the host (driver, PCI ids, mdev type)."""
from __future__ import annotations

from .schema import Profile


def score(profile: Profile, loc) -> int:
    """Number of match fields that agree; -1 if any declared field disagrees or none is declared."""
    m = profile.match
    pairs = [(m.driver, loc.driver), (m.vendor_id, loc.vendor_id), (m.device_id, loc.device_id),
             (m.mdev_type, loc.mdev_type)]
    declared = [(want, got) for want, got in pairs if want is not None]
    if not declared or any(want != got for want, got in declared):
        return -1
    return len(declared)


def best_match(profiles: list[Profile], loc) -> Profile | None:
    """The profile matching `loc` best (callers pass the profiles of the backend that found it)."""
    scored = [(score(p, loc), p) for p in profiles]
    scored = [(s, p) for s, p in scored if s > 0]
    return max(scored, key=lambda sp: sp[0])[1] if scored else None
