"""Identity values a run records beside its results (profile hash)."""
from __future__ import annotations

import hashlib
import os


def profile_hash(path: str | os.PathLike) -> str:
    """First 12 hex digits of the sha256 of the profile file's bytes ('' if unreadable)."""
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()[:12]
    except OSError:
        return ""
