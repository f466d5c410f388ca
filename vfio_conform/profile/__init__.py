"""Vendor profiles: YAML in profiles/, validated into dataclasses with file:line errors."""
from .loader import find_profile, load_profile, load_all, profiles_dir  # noqa: F401
from .schema import KnownIssue, Profile  # noqa: F401
