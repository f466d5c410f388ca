"""A private apt configuration for the Debian archives the kernel matrix fetches from.

Its own sources.list, package lists and download cache live under `<lab cache>/apt`; the host's
apt sources, lists and cache are never read or changed. The archives are checked against the
Debian archive keyring (package debian-archive-keyring), as apt checks them. Nothing is installed:
packages are fetched with `apt-get download` and unpacked by the lab.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import LabError

MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
#: (mirror, suite): bookworm (6.1, 6.12), trixie (6.12) and trixie-backports (6.18 and newer).
SUITES: tuple[tuple[str, str], ...] = (
    (MIRROR, "bookworm"), (SECURITY_MIRROR, "bookworm-security"),
    (MIRROR, "trixie"), (MIRROR, "trixie-backports"),
)
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
#: Package lists older than this are refreshed with `apt-get update` before resolving a kernel.
LISTS_MAX_AGE_S = 24 * 3600


@dataclass(frozen=True)
class PackageInfo:
    """One package version as the archive lists it (sizes in bytes)."""

    name: str
    version: str
    size: int
    installed_size: int


@dataclass
class PrivateApt:
    """apt-get / apt-cache run with a configuration of their own under `root`.

    Args:
        root: directory holding sources.list, lists/, cache/ and an empty dpkg status.
        keyring: the archive keyring every source is signed-by.
        suites: (mirror, suite) pairs of the sources.list.
        timeout: limit per apt command, seconds.
    """

    root: Path
    keyring: Path = KEYRING
    suites: tuple[tuple[str, str], ...] = SUITES
    timeout: float = 900
    _records: dict[str, list[dict[str, str]]] = field(default_factory=dict, repr=False)

    @property
    def sources_list(self) -> Path:
        return self.root / "etc" / "sources.list"

    @property
    def lists(self) -> Path:
        return self.root / "lists"

    def sources_text(self) -> str:
        """The sources.list this configuration uses (main only, amd64)."""
        return "".join(f"deb [arch=amd64 signed-by={self.keyring}] {mirror} {suite} main\n"
                       for mirror, suite in self.suites)

    def options(self) -> list[str]:
        """apt options that replace every host directory apt would read or write."""
        etc = self.root / "etc"
        opts = {
            "Dir::Etc::SourceList": self.sources_list, "Dir::Etc::SourceParts": etc / "sources.list.d",
            "Dir::Etc::Preferences": etc / "preferences", "Dir::Etc::PreferencesParts": etc / "preferences.d",
            "Dir::Etc::TrustedParts": etc / "trusted.gpg.d", "Dir::Etc::Trusted": etc / "trusted.gpg",
            "Dir::State::Lists": self.lists, "Dir::State::status": etc / "status",
            "Dir::Cache": self.root / "cache", "Acquire::Languages": "none",
            "APT::Architecture": "amd64", "APT::Architectures": "amd64",
            "APT::Get::List-Cleanup": "true",
        }
        out = []
        for key, value in opts.items():
            out += ["-o", f"{key}={value}"]
        if os.geteuid() == 0:          # root: apt's _apt sandbox user cannot write into our dirs
            out += ["-o", "APT::Sandbox::User=root"]
        return out

    def setup(self) -> None:
        """Write the configuration files and directories (idempotent)."""
        if not self.keyring.exists():
            raise LabError("missing-tool", f"{self.keyring} not found: install the "
                           "debian-archive-keyring package (the archives are checked against it)")
        for sub in ("etc/sources.list.d", "etc/preferences.d", "etc/trusted.gpg.d", "lists/partial",
                    "cache/archives/partial"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        if not self.sources_list.exists() or self.sources_list.read_text() != self.sources_text():
            self.sources_list.write_text(self.sources_text())
            (self.lists / "updated").unlink(missing_ok=True)
        (self.root / "etc" / "status").touch()

    def _run(self, tool: str, args: list[str], cwd: Path | None = None) -> str:
        exe = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin:/usr/bin:/bin")
        if exe is None:
            raise LabError("missing-tool", f"`{tool}` not found (the kernel matrix needs a "
                           "Debian/Ubuntu host with apt)")
        cmd = [exe, *self.options(), *args]
        shown = f"{tool} -o Dir::Etc::SourceList={self.sources_list} ... {' '.join(args)}"
        try:
            proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                                  timeout=self.timeout, env=dict(os.environ, LC_ALL="C"))
        except subprocess.TimeoutExpired as exc:
            raise LabError("download", f"`{shown}` timed out after {self.timeout}s") from exc
        if proc.returncode:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-25:])
            raise LabError("download", f"`{shown}` failed (exit {proc.returncode}):\n{tail}")
        return proc.stdout

    def update(self, *, force: bool = False) -> bool:
        """Fetch the package lists unless fresher than LISTS_MAX_AGE_S; True if fetched."""
        self.setup()
        stamp = self.lists / "updated"
        if not force and stamp.exists() and time.time() - stamp.stat().st_mtime < LISTS_MAX_AGE_S:
            return False
        self._run("apt-get", ["update"])
        stamp.touch()
        self._records.clear()
        return True

    @property
    def lists_stamp(self) -> str:
        """Changes whenever the package lists are fetched again (keys caches of what they hold)."""
        stamp = self.lists / "updated"
        return str(stamp.stat().st_mtime_ns) if stamp.exists() else ""

    def package_names(self, pattern: str) -> list[str]:
        """Names of the packages whose name matches the regular expression `pattern`."""
        out = self._run("apt-cache", ["pkgnames"])
        rx = re.compile(pattern)
        return sorted(n for n in out.split() if rx.fullmatch(n))

    def records(self, names: list[str]) -> dict[str, list[dict[str, str]]]:
        """Every archive record (all versions) of each of `names`, one apt-cache call for those
        not asked before; a name the archives lack maps to []."""
        todo = [n for n in names if n not in self._records]
        if todo:
            try:
                found = parse_records(self._run("apt-cache", ["show", *todo]))
            except LabError:
                if len(todo) > 1:   # a name the archives lack fails the whole call: one by one
                    for n in todo:
                        self.records([n])
                    return {n: self._records[n] for n in names}
                found = []
            for n in todo:
                self._records[n] = [r for r in found if r.get("Package") == n]
        return {n: self._records[n] for n in names}

    def show(self, name: str, version: str | None = None) -> PackageInfo | None:
        """The archive's newest version (or the given `version`) of `name`; None if it has none."""
        return _pick(self.records([name])[name], name, version)

    def show_many(self, names: list[str]) -> dict[str, PackageInfo]:
        """The newest versions of `names` (names the archives lack left out)."""
        recs = self.records(names)
        return {n: info for n in names if (info := _pick(recs[n], n, None)) is not None}

    def download(self, info: PackageInfo, dest: Path) -> Path:
        """The .deb of `info` in `dest`, fetched with `apt-get download` unless already there."""
        dest.mkdir(parents=True, exist_ok=True)
        pattern = f"{info.name}_{info.version.split(':')[-1]}_*.deb"
        if have := sorted(dest.glob(pattern)):
            return have[-1]
        self._run("apt-get", ["download", f"{info.name}={info.version}"], cwd=dest)
        if not (have := sorted(dest.glob(pattern))):
            raise LabError("download", f"`apt-get download {info.name}={info.version}` left no "
                           f"{pattern} in {dest}")
        return have[-1]


def parse_records(text: str) -> list[dict[str, str]]:
    """apt-cache show output: one dict per stanza (continuation lines dropped)."""
    records, cur = [], {}
    for line in text.splitlines() + [""]:
        if not line.strip():
            if cur:
                records.append(cur)
            cur = {}
        elif not line[0].isspace() and ":" in line:
            key, value = line.split(":", 1)
            cur[key] = value.strip()
    return records


def _pick(records: list[dict[str, str]], name: str, version: str | None) -> PackageInfo | None:
    """The record of `version`, or the highest version (dpkg order) when none is given."""
    candidates = [r for r in records if r.get("Package") == name and "Version" in r]
    if version:
        candidates = [r for r in candidates if r["Version"] == version]
    if not candidates:
        return None
    best = candidates[0]
    for rec in candidates[1:]:
        if compare_versions(rec["Version"], best["Version"]) > 0:
            best = rec
    return PackageInfo(name, best["Version"], int(best.get("Size", 0) or 0),
                       int(best.get("Installed-Size", 0) or 0) * 1024)


def compare_versions(a: str, b: str) -> int:
    """Debian version order (dpkg --compare-versions): -1, 0 or 1."""
    if a == b:
        return 0
    exe = shutil.which("dpkg") or "/usr/bin/dpkg"
    lt = subprocess.run([exe, "--compare-versions", a, "lt", b], check=False).returncode == 0
    return -1 if lt else 1
