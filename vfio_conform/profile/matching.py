"""Which profile describes a device found on the host (driver, PCI ids, mdev type)."""
from __future__ import annotations

from .schema import Profile


def score(profile: Profile, loc, kernel_release: str | None = None) -> int:
    """Number of match fields that agree; -1 if any declared field disagrees or none is declared
    (match.kernel counts when `kernel_release` is given)."""
    m = profile.match
    pairs = [(m.driver, loc.driver), (m.vendor_id, loc.vendor_id), (m.mdev_type, loc.mdev_type)]
    declared = [(want, got) for want, got in pairs if want is not None]
    if m.device_id is not None or m.device_ids:
        declared.append((True, m.device_matches(loc.device_id)))
    if m.kernel and kernel_release is not None:
        declared.append((True, m.kernel_matches(kernel_release)))
    if not declared or any(want != got for want, got in declared):
        return -1
    return len(declared)


def best_match(profiles: list[Profile], loc, kernel_release: str | None = None) -> Profile | None:
    """The profile matching `loc` best (callers pass the profiles of the backend that found it)."""
    scored = [(score(p, loc, kernel_release), p) for p in profiles]
    scored = [(s, p) for s, p in scored if s > 0]
    return max(scored, key=lambda sp: sp[0])[1] if scored else None
