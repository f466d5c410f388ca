"""Build libvfio-user's sample server from a source snapshot into the user's cache (meson + ninja).

    python3 -m vfio_conform.backends.vfio_user.build [--tarball PATH] [--sanitize]

The snapshot is a tarball `libvfio-user-<commit>.tar.gz` (default: the checkout's
../shared/third_party/libvfio-user-7e7a0a6c4f21.tar.gz, or $VC_LIBVFIO_USER_TARBALL); it is unpacked
and built under ${XDG_CACHE_HOME:-~/.cache}/vfio-conform/vfio-user/<commit>/ and kept: a second run
finds `build/samples/server` and does nothing. Nothing is copied into the repository.

`--sanitize` also builds the test target with AddressSanitizer and UndefinedBehaviorSanitizer
(`meson setup -Db_sanitize=address,undefined`) into a second build directory, `build-sanitize/`, from
the same unpacked source: `serve --sanitized` runs that server, and a report it prints during a test
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
from pathlib import Path

DEFAULT_COMMIT = "7e7a0a6c4f21"
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


def commit_of(tarball: Path) -> str:
    m = _NAME.search(tarball.name)
    if not m:
        raise BuildError(f"{tarball}: name is not libvfio-user-<commit>.tar.gz")
    return m.group(1)


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


def build(tarball: Path, timeout: float = 600.0) -> Path:
    """Unpack and build `tarball` into the cache (idempotent); the sample server's path."""
    commit = commit_of(tarball)
    done = built_server(commit)
    if done:
        return done
    if not tarball.is_file():
        raise BuildError(f"{tarball}: no such snapshot")
    for tool in ("meson", "ninja", "pkg-config", "cc"):
        if shutil.which(tool) is None:
            raise BuildError(f"{tool} not found (run scripts/install-vfio-user.sh as root)")
    top = cache_root() / commit
    tmp = top.with_name(top.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with tarfile.open(tarball) as tar:
        tar.extractall(tmp / "unpack", filter="data")
    (src,) = [p for p in (tmp / "unpack").iterdir() if p.is_dir()]
    src.rename(tmp / "src")
    log = tmp / "build.log"
    _run(["meson", "setup", str(tmp / "build"), str(tmp / "src")], tmp, log, timeout)
    _run(["ninja", "-C", str(tmp / "build"), "samples/server", "samples/client"], tmp, log, timeout)
    shutil.rmtree(tmp / "unpack", ignore_errors=True)
    shutil.rmtree(top, ignore_errors=True)
    tmp.rename(top)
    # meson records absolute paths: rebuilds are not needed, the binaries are what we keep.
    path = built_server(commit)
    if path is None:
        raise BuildError(f"build of {commit} produced no samples/server (log {top / 'build.log'})")
    return path


def build_sanitized(tarball: Path, timeout: float = 600.0) -> Path:
    """The plain build (if missing), then the same source with -Db_sanitize=address,undefined into
    build-sanitize/ (idempotent); the sanitized sample server's path."""
    commit = commit_of(tarball)
    done = built_server(commit, sanitized=True)
    if done:
        return done
    build(tarball, timeout)
    top = cache_root() / commit
    if not (top / "src").is_dir():
        raise BuildError(f"{top / 'src'}: the unpacked source is gone (remove {top} and build again)")
    out = top / "build-sanitize"
    shutil.rmtree(out, ignore_errors=True)
    log = top / "build-sanitize.log"
    _run(["meson", "setup", str(out), str(top / "src"), "-Db_sanitize=address,undefined", "-Db_lundef=false"],
         top, log, timeout)
    _run(["ninja", "-C", str(out), "samples/server"], top, log, timeout)
    path = built_server(commit, sanitized=True)
    if path is None:
        raise BuildError(f"sanitized build of {commit} produced no samples/server (log {log})")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="vfio_conform.backends.vfio_user.build")
    ap.add_argument("--tarball", type=Path, default=None, help="libvfio-user-<commit>.tar.gz")
    ap.add_argument("--sanitize", action="store_true",
                    help="also build the server with AddressSanitizer and UndefinedBehaviorSanitizer")
    args = ap.parse_args(argv)
    tarball = args.tarball or default_tarball()
    try:
        path = build(tarball)
        print(path)
        if args.sanitize:
            print(build_sanitized(tarball))
    except BuildError as exc:
        print(f"install-vfio-user: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
