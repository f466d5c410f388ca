"""The harness as a kselftest: `scripts/kselftest/run.sh` (python3 -m vfio_conform.tools.kselftest).

It follows tools/testing/selftests/vfio: the devices to test are PCI addresses given on the
command line (`-d BDF`, repeatable, or plain arguments; the first is the source, a second one the
destination) or in $VFIO_SELFTESTS_BDF (whitespace-separated); the profile is `-p PROFILE`,
$VFIO_CONFORM_PROFILE, or the one matching the first device. KTAP goes to stdout (the run's own
output to stderr), and the exit code is kselftest's:

    0 (pass)  the device conforms
    1 (fail)  a violation, an infrastructure error, an incomplete run, or bad arguments
    4 (skip)  nothing to test: no device given, a given address is not a PCI device of this host,
              or no profile matches it

Ids that are not PCI addresses (a sim instance, an mdev UUID, vfio-user:PATH) go to the profile's
backend as they are: that is how the tests drive the entry without hardware.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

KSFT_PASS, KSFT_FAIL, KSFT_SKIP = 0, 1, 4
BDF_ENV = "VFIO_SELFTESTS_BDF"
PROFILE_ENV = "VFIO_CONFORM_PROFILE"
_BDF = re.compile(r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$")


def skip(reason: str) -> int:
    """KTAP for a test that cannot run, and kselftest's skip code."""
    print("KTAP version 1")
    print(f"1..0 # SKIP {reason}")
    sys.stdout.flush()
    return KSFT_SKIP


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="run.sh", description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-d", "--device", action="append", default=[], metavar="BDF",
                   help="a device to test (repeatable: source, then destination)")
    p.add_argument("-p", "--profile", default=os.environ.get(PROFILE_ENV), metavar="NAME|PATH",
                   help=f"the device's profile (default: ${PROFILE_ENV}, else the one matching it)")
    p.add_argument("--sysfs", default=os.environ.get("VFIO_CONFORM_SYSFS", "/sys"), help=argparse.SUPPRESS)
    p.add_argument("devices", nargs="*", metavar="BDF")
    return p


def devices_of(args) -> list[str]:
    given = [*args.device, *args.devices]
    return given or os.environ.get(BDF_ENV, "").split()


def missing(devices: list[str], sysfs: str) -> list[str]:
    """The PCI addresses among `devices` that are not PCI devices of this host."""
    return [d for d in devices if _BDF.match(d) and not (Path(sysfs) / "bus/pci/devices" / d).exists()]


def matching_profile(bdf: str, sysfs: str) -> str | None:
    """The profile that best matches PCI device `bdf` on this host (None: none does)."""
    from ..backends.registry import host_backends
    from ..profile import load_all
    from ..profile.matching import best_match
    profiles, _ = load_all()
    for backend in host_backends():
        for loc in backend.list_host_devices(sysfs):
            if loc.id == bdf:
                match = best_match([p for p in profiles if p.backend == backend.name], loc, os.uname().release)
                return match.path if match else None
    return None


_RESULT = re.compile(r"^\s*(ok|not ok) \d+ ([^#]*?)\s*(?:#\s*(\w+)\b.*)?$")
#: KTAP result and directive -> LAVA's result words (pass, fail, skip, unknown).
_LAVA = {("ok", ""): "pass", ("not ok", ""): "fail", ("ok", "SKIP"): "skip", ("not ok", "SKIP"): "skip",
         ("ok", "XFAIL"): "fail", ("not ok", "XFAIL"): "fail",          # a known issue: still a failure
         ("not ok", "TIMEOUT"): "unknown", ("not ok", "ERROR"): "unknown",  # infra-error: no verdict
         ("ok", "TODO"): "fail", ("not ok", "TODO"): "fail"}


def lava_results(ktap: str) -> list[tuple[str, str]]:
    """(test case name, LAVA result) for each KTAP result line (subtests' lines included)."""
    out = []
    for line in ktap.splitlines():
        found = _RESULT.match(line)
        if found:
            status, name, directive = found.group(1), found.group(2), (found.group(3) or "").upper()
            result = _LAVA.get((status, directive), "fail" if status == "not ok" else "pass")
            out.append((re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "unnamed", result))
    return out


def report_to_lava(path: str) -> int:
    """`--lava-results FILE`: each KTAP result as `lava-test-case NAME --result R` (printed when
    lava-test-case is not on PATH, i.e. outside a LAVA job)."""
    import shutil
    tool = shutil.which("lava-test-case")
    for name, result in lava_results(Path(path).read_text()):
        if tool:
            subprocess.run([tool, name, "--result", result], check=False)
        else:
            print(f"{name} {result}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--lava-results"] and len(argv) == 2:
        return report_to_lava(argv[1])
    extra: list[str] = []
    if "--" in argv:                   # after --: pytest's arguments (e.g. -k), as `vfio-conform run`
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    args = _parser().parse_args(argv)
    devices = devices_of(args)
    if not devices:
        return skip(f"no device to test: pass PCI addresses (-d BDF) or set ${BDF_ENV}")
    gone = missing(devices, args.sysfs)
    if gone:
        return skip(f"not a PCI device of this host: {', '.join(gone)}")
    profile = args.profile or (matching_profile(devices[0], args.sysfs) if _BDF.match(devices[0]) else None)
    if not profile:
        return skip(f"no profile matches {devices[0]}: pass -p PROFILE")
    with tempfile.TemporaryDirectory(prefix="vc-kselftest-") as tmp:
        ktap = Path(tmp) / "results.ktap"
        cmd = [sys.executable, "-m", "vfio_conform", "run", "--profile", profile, "-q", "--ktap", str(ktap),
               *(w for d in devices for w in ("--device", d)), *(["--"] + extra if extra else [])]
        done = subprocess.run(cmd, stdout=sys.stderr, stderr=sys.stderr)
        if ktap.exists():
            sys.stdout.write(ktap.read_text())
            sys.stdout.flush()
    if done.returncode == 0:
        return KSFT_PASS
    return KSFT_FAIL


if __name__ == "__main__":
    sys.exit(main())
