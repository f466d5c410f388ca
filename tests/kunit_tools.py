"""The kernel's own KTAP parser (tools/testing/kunit/*.py), taken from Debian's linux-source package.

The package is fetched with `apt-get download` (vfio_conform.base.debian, as the lab fetches its kernel)
into the project's cache and only tools/testing/kunit/*.py is extracted. setup.sh prefetches it:
`python3 tests/kunit_tools.py`.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vfio_conform.base.debian import apt_download  # noqa: E402

SERIES = "6.12"
PACKAGE = f"linux-source-{SERIES}"
MEMBER_DIR = f"linux-source-{SERIES}/tools/testing/kunit/"


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "vfio-conform" / "kunit"


def kunit_dir() -> Path:
    """The directory holding kunit_parser.py (fetched and extracted on first use)."""
    dest = cache_dir() / SERIES
    if (dest / "kunit_parser.py").exists():
        return dest
    deb = apt_download(PACKAGE, cache_dir() / "debs")
    _extract(deb, dest)
    return dest


def _extract(deb: Path, dest: Path) -> None:
    """Stream tools/testing/kunit/*.py out of the .deb's source tarball (nothing else unpacked)."""
    inner = f"./usr/src/linux-source-{SERIES}.tar.xz"
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as outer:
            for entry in outer:
                if entry.name != inner:
                    continue
                with tarfile.open(fileobj=outer.extractfile(entry), mode="r|xz") as src:
                    for member in src:
                        rest = member.name[len(MEMBER_DIR):]
                        if (member.isfile() and member.name.startswith(MEMBER_DIR) and "/" not in rest
                                and rest.endswith(".py")):
                            (tmp / rest).write_bytes(src.extractfile(member).read())
                break
    finally:
        proc.kill()
        proc.wait()
    if not (tmp / "kunit_parser.py").exists():
        raise RuntimeError(f"{MEMBER_DIR}kunit_parser.py not found in {deb}")
    tmp.rename(dest)


def _parser():
    where = str(kunit_dir())
    if where not in sys.path:
        sys.path.insert(0, where)
    import kunit_parser
    return kunit_parser


def parse(ktap_text: str):
    """kunit_parser.parse_run_tests on `ktap_text`: the kernel parser's Test (it also prints its
    summary, which pytest captures)."""
    return _parser().parse_run_tests(ktap_text.splitlines())


def directives(ktap_text: str) -> dict[str, str]:
    """Test name -> the directive keyword of its result line ('' for none), read with the kernel
    parser's own result-line grammar (kunit_parser.TEST_RESULT: name, then ` # <directive>`).

    The kernel parser turns only SKIP into a status of its own: TIMEOUT and ERROR lines are
    FAILURE there and XFAIL lines SUCCESS, as KTAP lets a parser fall back to ok / not ok; the
    directive is what tells an infrastructure error from a failure."""
    pattern = _parser().TEST_RESULT
    out = {}
    for line in ktap_text.splitlines():
        match = pattern.match(line)
        if match:
            tail = (match.group(5) or "").strip().removeprefix("#").split()
            out[match.group(4).strip()] = tail[0] if tail else ""
    return out


def kunit_cli(ktap_text: str, workdir: Path) -> subprocess.CompletedProcess:
    """`kunit.py parse FILE` as a CI job runs it, on `ktap_text`: its printed results and its exit
    code. kunit.py refuses to run (exit 1, nothing printed) outside a kernel tree's
    tools/testing/kunit/, so its files are copied into one under `workdir`."""
    tool = workdir / "linux" / "tools" / "testing" / "kunit"
    tool.mkdir(parents=True, exist_ok=True)
    for src in kunit_dir().glob("*.py"):
        (tool / src.name).write_bytes(src.read_bytes())
    (workdir / "run.ktap").write_text(ktap_text)
    return subprocess.run([sys.executable, str(tool / "kunit.py"), "parse", str(workdir / "run.ktap")],
                          capture_output=True, text=True, timeout=120, cwd=workdir)


def leaves(test) -> dict[str, object]:
    """Every leaf Test of a parsed run by name (its `status` and `log`, as the kernel parser made them)."""
    if not test.subtests:
        return {test.name: test}
    return {name: leaf for sub in test.subtests for name, leaf in leaves(sub).items()}


if __name__ == "__main__":
    print(f"kunit parser: {kunit_dir()}")
