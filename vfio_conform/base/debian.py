"""Fetch Debian packages: the one way the lab (kernel, headers, mtty source) and the uAPI header
check get a .deb, with `apt-get download` from the host's configured archive."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .errors import InfraError

APT_HINT = "run `apt-get update` (the host's apt sources must carry Debian bookworm)"


def apt_download(package: str, dest: Path, *, version: str | None = None, timeout: float = 600) -> Path:
    """The .deb of `package` (pinned to `version` if given) in `dest`, downloaded unless already
    there. InfraError names the command and its stderr tail when apt-get is missing or fails."""
    dest.mkdir(parents=True, exist_ok=True)
    pattern = f"{package}_{version.split(':')[-1]}_*.deb" if version else f"{package}_*.deb"
    if have := sorted(dest.glob(pattern)):
        return have[-1]
    apt = shutil.which("apt-get") or shutil.which("apt-get", path="/usr/sbin:/sbin:/usr/bin:/bin")
    if apt is None:
        raise InfraError(f"cannot fetch {package}: `apt-get` not found (a Debian/Ubuntu host is needed)")
    cmd = [apt, "download", f"{package}={version}" if version else package]
    if os.geteuid() == 0:                  # root: apt's _apt sandbox user cannot write into dest
        cmd[1:1] = ["-o", "APT::Sandbox::User=root"]
    shown = " ".join(["apt-get", *cmd[1:]])
    try:
        proc = subprocess.run(cmd, cwd=dest, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise InfraError(f"`{shown}` timed out after {timeout}s") from exc
    have = sorted(dest.glob(f"{package}_*.deb"))
    if proc.returncode or not have:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-25:])
        raise InfraError(f"`{shown}` failed (exit {proc.returncode}, no .deb in {dest}):\n{tail}\n"
                         f"  {APT_HINT}")
    return have[-1]
