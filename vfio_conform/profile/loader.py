"""Find and load profiles from the top-level profiles/ directory (or any path)."""
from __future__ import annotations

from pathlib import Path

from ..constants import PROFILES_DIR
from ..errors import ConfigError
from .schema import Profile, build_profile
from .yamlmarks import load_marked

#: Largest profile file read (the shipped ones are a few KiB); larger ones are refused unread.
MAX_PROFILE_BYTES = 1 << 20


def profiles_dir() -> Path:
    """The project's profiles/ directory (beside the package in a checkout)."""
    return PROFILES_DIR


def load_profile(path: str | Path) -> Profile:
    """Load and validate one profile file (ConfigError names file, line and field)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_PROFILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read profile: {exc.strerror}", str(path)) from None
    if len(raw) > MAX_PROFILE_BYTES:
        raise ConfigError(f"profile is larger than {MAX_PROFILE_BYTES // 1024} KiB", str(path), 1,
                          hint="a profile is a short YAML file; is this the right path?")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(f"not UTF-8 text (byte {raw[exc.start]:#04x})", str(path), line) from None
    return build_profile(load_marked(text, str(path)))


def find_profile(name_or_path: str, directory: Path | None = None) -> Profile:
    """A profile by name (profiles/NAME.yaml or a profile whose name: is NAME) or by path."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        return load_profile(candidate)
    directory = directory or profiles_dir()
    direct = directory / f"{name_or_path}.yaml"
    if direct.exists():
        return load_profile(direct)
    for path in sorted(directory.glob("*.yaml")):
        try:
            profile = load_profile(path)
        except ConfigError:
            continue
        if profile.name == name_or_path:
            return profile
    known = ", ".join(p.stem for p in sorted(directory.glob("*.yaml")))
    raise ConfigError(f"no profile named {name_or_path!r} in {directory}",
                      hint=f"known: {known}; list them with 'vfio-conform profiles'")


def load_all(directory: Path | None = None) -> tuple[list[Profile], list[ConfigError]]:
    """Every profile in the directory: (valid ones, errors of invalid ones)."""
    good, bad = [], []
    for path in sorted((directory or profiles_dir()).glob("*.yaml")):
        try:
            good.append(load_profile(path))
        except ConfigError as exc:
            bad.append(exc)
    return good, bad
