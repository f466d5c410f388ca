"""Build libvfio-user's sample server from its source into the user's cache (meson + ninja).

    python3 -m vfio_conform.backends.vfio_user.build [--tarball PATH] [--sanitize]

The source, first found wins (find_source): $VFIO_USER_SRC (a source tree, or a tarball
`libvfio-user-<commit>.tar.gz`); $VC_LIBVFIO_USER_TARBALL; the snapshot beside the checkout
(../shared/third_party/libvfio-user-7e7a0a6c4f21.tar.gz); the pinned commit's tarball fetched from
upstream into the cache, where the network allows. It is built under
${XDG_CACHE_HOME:-~/.cache}/vfio-conform/vfio-user/<commit>/ and kept: a second run finds
`build/samples/server` and does nothing. Nothing is copied into the repository.

Without a source (or with a build that fails) the command prints one line saying the vfio-user
tests will be skipped and why, and exits 0, so a fresh clone sets up; with $VC_REQUIRE_VFIO_USER
set (CI), or a source named explicitly (--tarball, $VFIO_USER_SRC) that fails, it exits 2.

`--sanitize` also builds the test target with AddressSanitizer and UndefinedBehaviorSanitizer
(`meson setup -Db_sanitize=address,undefined`) into a second build directory, `build-sanitize/`, from
the same source: `serve --sanitized` runs that server, and a report it prints during a test
fails the test (server.no-sanitizer-report).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

DEFAULT_COMMIT = "7e7a0a6c4f21"
#: Where the pinned commit is fetched from when no source is found locally.
UPSTREAM = "https://github.com/nutanix/libvfio-user"
#: A libvfio-user source tree or tarball to build (checked first).
SRC_ENV = "VFIO_USER_SRC"
#: Set (CI): a sample server that cannot be built is an error, in the setup and in the tests.
REQUIRE_ENV = "VC_REQUIRE_VFIO_USER"
FETCH_TIMEOUT_S = 30.0
_ROOT = Path(__file__).resolve().parents[3]
_NAME = re.compile(r"libvfio-user-([0-9a-f]{7,40})\.tar\.gz$")


class BuildError(Exception):
    pass


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vfio-conform" / "vfio-user"


def default_tarball(commit: str = DEFAULT_COMMIT) -> Path:
    env = os.environ.get("VC_LIBVFIO_USER_TARBALL")
    if env:
        return Path(env)
    return _ROOT.parent / "shared" / "third_party" / f"libvfio-user-{commit}.tar.gz"


def commit_of(source: Path) -> str:
    """The commit a source is built as: a tarball's name, a git tree's HEAD; a plain tree is taken
    to be the pinned commit."""
    if source.is_dir():
        try:
            head = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True,
                                  text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            head = ""
        return head[:len(DEFAULT_COMMIT)] if re.fullmatch(r"[0-9a-f]{40}", head) else DEFAULT_COMMIT
    m = _NAME.search(source.name)
    if not m:
        raise BuildError(f"{source}: name is not libvfio-user-<commit>.tar.gz")
    return m.group(1)


def fetch_upstream(commit: str = DEFAULT_COMMIT, timeout: float = FETCH_TIMEOUT_S) -> Path:
    """The pinned commit's tarball from upstream, downloaded once into the cache."""
    dest = cache_root() / "src" / f"libvfio-user-{commit}.tar.gz"
    if dest.is_file():
        return dest
    url = f"{UPSTREAM}/archive/{commit}.tar.gz"
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer, open(part, "wb") as out:
            shutil.copyfileobj(answer, out, 1 << 20)
    except (OSError, urllib.error.URLError) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise BuildError(f"no libvfio-user source: ${SRC_ENV} is not set, no "
                         f"{default_tarball(commit).name} beside the checkout, and fetching {url} "
                         f"failed ({reason})") from None
    part.rename(dest)
    return dest


def find_source(commit: str = DEFAULT_COMMIT) -> Path:
    """The source to build (see the module's docstring for the order); BuildError when none."""
    named = os.environ.get(SRC_ENV)
    if named:
        path = Path(named).expanduser()
        if not path.exists():
            raise BuildError(f"${SRC_ENV}={named}: no such source tree or tarball")
        return path
    snapshot = default_tarball(commit)
    return snapshot if snapshot.is_file() else fetch_upstream(commit)


def server_path(commit: str = DEFAULT_COMMIT) -> Path:
    """Where the built sample server of `commit` is (it may not exist yet)."""
    return cache_root() / commit / "build" / "samples" / "server"


def sanitized_server_path(commit: str = DEFAULT_COMMIT) -> Path:
    """Where the ASan+UBSan build of `commit`'s sample server is (it may not exist yet)."""
    return cache_root() / commit / "build-sanitize" / "samples" / "server"


def built_server(commit: str = DEFAULT_COMMIT, sanitized: bool = False) -> Path | None:
    path = sanitized_server_path(commit) if sanitized else server_path(commit)
    return path if path.is_file() and os.access(path, os.X_OK) else None


def _run(cmd: list[str], cwd: Path, log: Path, timeout: float) -> None:
    with open(log, "ab") as out:
        try:
            rc = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout).returncode
        except FileNotFoundError:
            raise BuildError(f"{cmd[0]} not found (run scripts/install-vfio-user.sh as root)") from None
        except subprocess.TimeoutExpired:
            raise BuildError(f"{' '.join(cmd)}: no result after {timeout:.0f} s (log {log})") from None
    if rc:
        raise BuildError(f"{' '.join(cmd)} exited {rc} (log {log})")


def build(source: Path, timeout: float = 600.0) -> Path:
    """Build `source` (a tarball, or a source tree) into the cache (idempotent); the sample server's path."""
    commit = commit_of(source)
    done = built_server(commit)
    if done:
        return done
    if not (source.is_file() or (source / "meson.build").is_file()):
        raise BuildError(f"{source}: no such snapshot or libvfio-user source tree")
    for tool in ("meson", "ninja", "pkg-config", "cc"):
        if shutil.which(tool) is None:
            raise BuildError(f"{tool} not found (run scripts/install-vfio-user.sh as root)")
    top = cache_root() / commit
    tmp = top.with_name(top.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if source.is_dir():             # built out of tree: the source tree is only read
        src = source.resolve()
    else:
        with tarfile.open(source) as tar:
            tar.extractall(tmp / "unpack", filter="data")
        (unpacked,) = [p for p in (tmp / "unpack").iterdir() if p.is_dir()]
        src = unpacked.rename(tmp / "src")
    log = tmp / "build.log"
    _run(["meson", "setup", str(tmp / "build"), str(src)], tmp, log, timeout)
    _run(["ninja", "-C", str(tmp / "build"), "samples/server", "samples/client"], tmp, log, timeout)
    shutil.rmtree(tmp / "unpack", ignore_errors=True)
    shutil.rmtree(top, ignore_errors=True)
    tmp.rename(top)
    # meson records absolute paths: rebuilds are not needed, the binaries are what we keep.
    path = built_server(commit)
    if path is None:
        raise BuildError(f"build of {commit} produced no samples/server (log {top / 'build.log'})")
    return path


def build_sanitized(source: Path, timeout: float = 600.0) -> Path:
    """The plain build (if missing), then the same source with -Db_sanitize=address,undefined into
    build-sanitize/ (idempotent); the sanitized sample server's path."""
    commit = commit_of(source)
    done = built_server(commit, sanitized=True)
    if done:
        return done
    build(source, timeout)
    top = cache_root() / commit
    src = source.resolve() if source.is_dir() else top / "src"
    if not src.is_dir():
        raise BuildError(f"{top / 'src'}: the unpacked source is gone (remove {top} and build again)")
    out = top / "build-sanitize"
    shutil.rmtree(out, ignore_errors=True)
    log = top / "build-sanitize.log"
    _run(["meson", "setup", str(out), str(src), "-Db_sanitize=address,undefined", "-Db_lundef=false"],
         top, log, timeout)
    _run(["ninja", "-C", str(out), "samples/server"], top, log, timeout)
    path = built_server(commit, sanitized=True)
    if path is None:
        raise BuildError(f"sanitized build of {commit} produced no samples/server (log {log})")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="vfio_conform.backends.vfio_user.build")
    ap.add_argument("--tarball", type=Path, default=None,
                    help=f"libvfio-user-<commit>.tar.gz or a source tree (default: ${SRC_ENV}, the snapshot "
                         "beside the checkout, the pinned commit from upstream)")
    ap.add_argument("--sanitize", action="store_true",
                    help="also build the server with AddressSanitizer and UndefinedBehaviorSanitizer")
    args = ap.parse_args(argv)
    explicit = bool(args.tarball or os.environ.get(SRC_ENV))
    done = [built_server(), *([built_server(sanitized=True)] if args.sanitize else [])]
    if not explicit and all(done):  # built before: no source needed
        print("\n".join(map(str, done)))
        return 0
    try:
        source = args.tarball or find_source()
        path = build(source)
    except BuildError as exc:
        if explicit or os.environ.get(REQUIRE_ENV):
            print(f"install-vfio-user: error: {exc}", file=sys.stderr)
            return 2
        print(f"install-vfio-user: the vfio-user tests will be skipped: {exc}", flush=True)
        return 0
    print(path)
    if args.sanitize:
        try:
            print(build_sanitized(source))
        except BuildError as exc:
            print(f"install-vfio-user: error: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
