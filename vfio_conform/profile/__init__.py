"""Vendor profiles: YAML in profiles/, validated into dataclasses with file:line errors."""
from .loader import (FoundProfile, ProfileSource, find_all, find_profile, load_all,  # noqa: F401
                     load_profile, profiles_dir, search_path)
from .schema import KnownIssue, Profile  # noqa: F401
