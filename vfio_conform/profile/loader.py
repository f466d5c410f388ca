"""Find and load profiles: ./profiles, then $VFIO_CONFORM_PROFILES, then the built-in ones (or any path)."""
from __future__ import annotations

import copy
import dataclasses
import os
from pathlib import Path

from ..base.constants import LOCAL_PROFILES_DIR, PROFILES_DIR, PROFILES_ENV
from ..base.errors import ConfigError
from .schema import Profile, build_profile
from .yamlmarks import Marked, load_marked

#: Largest profile file read (the shipped ones are a few KiB); larger ones are refused unread.
MAX_PROFILE_BYTES = 1 << 20


@dataclasses.dataclass(frozen=True)
class ProfileSource:
    """One directory of the profile search path: `kind` is local, env or built-in."""

    kind: str
    directory: Path


@dataclasses.dataclass(frozen=True)
class FoundProfile:
    """A profile found on the search path; `shadows`: same-named profiles later on the path it hides."""

    profile: Profile
    source: ProfileSource
    shadows: tuple[tuple[ProfileSource, str], ...] = ()


def profiles_dir() -> Path:
    """The built-in profiles (`profiles/` of a checkout, shipped inside the package of a wheel)."""
    return PROFILES_DIR


def search_path() -> list[ProfileSource]:
    """Where profiles are looked up by name, first match wins: `./profiles` of the current directory
    (if it exists and is not the checkout's own built-in profiles/), each directory of $VFIO_CONFORM_PROFILES (os.pathsep-separated), the built-in ones.

    A $VFIO_CONFORM_PROFILES entry that is not a directory is a ConfigError (a typo would otherwise
    silently fall back to a built-in profile of the same name)."""
    out = []
    local = Path.cwd() / LOCAL_PROFILES_DIR
    if local.is_dir() and local.resolve() != PROFILES_DIR.resolve():   # a checkout's own: built-in
        out.append(ProfileSource("local", local))
    for entry in os.environ.get(PROFILES_ENV, "").split(os.pathsep):
        if not entry.strip():
            continue
        path = Path(entry).expanduser().absolute()
        if not path.is_dir():
            raise ConfigError(f"{PROFILES_ENV}: {entry}: not a directory",
                              hint="a list of profile directories separated by " + repr(os.pathsep))
        out.append(ProfileSource("env", path))
    out.append(ProfileSource("built-in", PROFILES_DIR))
    seen, unique = set(), []
    for src in out:             # the same directory twice (e.g. ./profiles also in the env): once
        key = src.directory.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(src)
    return unique


def read_marked(path: str | Path, kind: str, hint: str | None = None) -> Marked:
    """A small YAML file of `kind` ("profile", "inventory") read with line marks: size, encoding and
    YAML safety checked (ConfigError names the file and line)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_PROFILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {kind}: {exc.strerror}", str(path)) from None
    if len(raw) > MAX_PROFILE_BYTES:
        raise ConfigError(f"{kind} is larger than {MAX_PROFILE_BYTES // 1024} KiB", str(path), 1, hint=hint)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(f"not UTF-8 text (byte {raw[exc.start]:#04x})", str(path), line) from None
    key = (str(path), text)
    if key not in _PARSED:       # a run reads each profile in the CLI and again in pytest's configure
        _PARSED[key] = load_marked(text, str(path))
    hit = _PARSED[key]
    return Marked(copy.deepcopy(hit.data), dict(hit.lines), hit.path)


#: (path, text) -> what load_marked made of it, in this process (a copy is handed out).
_PARSED: dict[tuple[str, str], Marked] = {}


def load_profile(path: str | Path) -> Profile:
    """Load and validate one profile file (ConfigError names file, line and field)."""
    return build_profile(read_marked(path, "profile",
                                     hint="a profile is a short YAML file; is this the right path?"))


def find_profile(name_or_path: str, directory: Path | None = None) -> Profile:
    """A profile by path, or by name (NAME.yaml or a profile whose name: is NAME) in `directory` or,
    without it, on the search path (the first directory that has it wins)."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        return load_profile(candidate)
    dirs = [directory] if directory is not None else [s.directory for s in search_path()]
    for d in dirs:
        direct = d / f"{name_or_path}.yaml"
        if direct.exists():
            return load_profile(direct)
        for path in sorted(d.glob("*.yaml")):
            try:
                profile = load_profile(path)
            except ConfigError:
                continue
            if profile.name == name_or_path:
                return profile
    known = ", ".join(sorted({p.stem for d in dirs for p in d.glob("*.yaml")}))
    where = str(dirs[0]) if len(dirs) == 1 else ", ".join(str(d) for d in dirs)
    raise ConfigError(f"no profile named {name_or_path!r} in {where}",
                      hint=f"known: {known}; list them with 'vfio-conform profiles'")


def load_all(directory: Path | None = None) -> tuple[list[Profile], list[ConfigError]]:
    """Every profile in `directory` or, without it, on the search path (a name found earlier on the
    path hides later ones): (valid ones, errors of invalid ones)."""
    if directory is not None:
        good, bad = _load_dir(directory)
        return good, bad
    found, bad = find_all()
    return [f.profile for f in found], bad


def find_all() -> tuple[list[FoundProfile], list[ConfigError]]:
    """Every profile on the search path with where it came from and what it shadows."""
    found: dict[str, FoundProfile] = {}
    bad: list[ConfigError] = []
    for source in search_path():
        good, errors = _load_dir(source.directory)
        bad += errors
        for profile in good:
            first = found.get(profile.name)
            if first is None:
                found[profile.name] = FoundProfile(profile, source)
            else:
                found[profile.name] = dataclasses.replace(
                    first, shadows=(*first.shadows, (source, profile.path)))
    return list(found.values()), bad


def _load_dir(directory: Path) -> tuple[list[Profile], list[ConfigError]]:
    good, bad = [], []
    for path in sorted(directory.glob("*.yaml")):
        try:
            good.append(load_profile(path))
        except ConfigError as exc:
            bad.append(exc)
    return good, bad
