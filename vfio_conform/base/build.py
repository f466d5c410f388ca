"""Which harness a run used: package version, git commit of a checkout, and what the suites check.

`version` alone (0.1.0 on every commit) cannot tell a regression caused by a harness change from one
caused by the driver; the build identity can. It has:

* the version from the installed package's metadata (the source tree's `__version__` when the
  package is not installed, e.g. a plain checkout on PYTHONPATH);
* the git commit when the package is imported from a git checkout, with a dirty flag when the
  checkout has uncommitted changes to tracked files (an installed wheel has no commit);
* a content hash of the suites (`suites/` of a checkout, vfio_conform/suites of a wheel), their
  fixtures and the rule catalogue (model/spec.py): two builds with the same hash run the same
  checks, whatever their version says.

Stored with every run (the `harness_build` column, and the environment's `harness.build`),
shown in every output, compared by `diff`. Computed once per process tree: the first process puts
it in $VFIO_CONFORM_HARNESS_BUILD, which its children (xdist workers, the lab guest's processes)
read instead of asking git again.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import subprocess
from pathlib import Path

from .constants import FIXTURES_DIR, PACKAGE_DIR, SUITES_DIR

#: The source tree's version (pyproject.toml's `version`); the package's `__version__`.
__version__ = "0.1.0"


def hashed() -> dict[str, Path]:
    """What the content hash covers, by the name it is hashed under (the same in a checkout and a
    wheel): the suites, their fixtures and the rule catalogue."""
    return {"suites": SUITES_DIR, "fixtures": FIXTURES_DIR, "model/spec.py": PACKAGE_DIR / "model" / "spec.py"}


@dataclasses.dataclass(frozen=True)
class HarnessBuild:
    version: str
    commit: str = ""        # 12 hex digits of the checkout's HEAD ("" when not a git checkout)
    dirty: bool = False     # the checkout has uncommitted changes to tracked files
    content: str = ""       # sha256 prefix of the suites and the rule catalogue

    def __str__(self) -> str:
        """'0.1.0+g1a2b3c4d5e6f.dirty suites:0123456789ab' (one token per part, parseable back)."""
        text = self.version
        if self.commit:
            text += f"+g{self.commit}" + (".dirty" if self.dirty else "")
        return f"{text} suites:{self.content}" if self.content else text

    @classmethod
    def parse(cls, text: str) -> "HarnessBuild":
        """The inverse of str() ('' or an old store's bare version read as that version alone)."""
        head, _, rest = (text or "").strip().partition(" suites:")
        version, _, local = head.partition("+g")
        commit, _, flag = local.partition(".")
        return cls(version, commit, flag == "dirty", rest.strip())

    def as_dict(self) -> dict:
        return {"version": self.version, "commit": self.commit or None, "dirty": self.dirty,
                "content": self.content, "id": str(self)}


def package_version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version
        try:
            return version("vfio-conform")
        except PackageNotFoundError:
            return __version__
    except ImportError:      # pragma: no cover - importlib.metadata is stdlib from 3.8
        return __version__


def git_state(root: Path) -> tuple[str, bool]:
    """(12-digit commit, dirty) of the checkout `root`, or ('', False) when it is none."""
    if not (root / ".git").exists():
        return "", False
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")      # a reader never takes the index lock
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, env=env)
        if head.returncode != 0:
            return "", False
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return "", False
    return head.stdout.strip()[:12], bool(status.stdout.strip()) or status.returncode != 0


def content_hash(parts: dict[str, Path] | None = None) -> str:
    """sha256 prefix over the files of `parts` (default: hashed()), each as its name and bytes, sorted."""
    digest = hashlib.sha256()
    files: list[tuple[str, Path]] = []
    for name, path in (parts if parts is not None else hashed()).items():
        if path.is_dir():
            files += [(f"{name}/{p.relative_to(path).as_posix()}", p) for p in path.rglob("*")
                      if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")]
        elif path.is_file():
            files.append((name, path))
    for name, path in sorted(files):
        digest.update(name.encode() + b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:12]


#: The harness build of the process that started this one (text of HarnessBuild).
BUILD_ENV = "VFIO_CONFORM_HARNESS_BUILD"


@functools.lru_cache(maxsize=1)
def harness_build() -> HarnessBuild:
    """This process's harness build (computed once per process tree, see BUILD_ENV)."""
    inherited = os.environ.get(BUILD_ENV)
    if inherited:
        return HarnessBuild.parse(inherited)
    commit, dirty = git_state(PACKAGE_DIR.parent)
    build = HarnessBuild(package_version(), commit, dirty, content_hash())
    os.environ[BUILD_ENV] = str(build)
    return build
