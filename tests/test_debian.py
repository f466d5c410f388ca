"""One way to fetch a Debian package (the lab and the uAPI header check both use it)."""
import os
import stat

import pytest

from vfio_conform.base.debian import apt_download
from vfio_conform.base.errors import InfraError
from vfio_conform.qemu_lab.errors import LabError


def fake_apt(tmp_path, monkeypatch, body: str):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    apt = bin_dir / "apt-get"
    apt.write_text("#!/bin/sh\n" + body)
    apt.chmod(apt.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return bin_dir / "calls"


def test_downloads_the_pinned_version_into_dest(tmp_path, monkeypatch):
    calls = fake_apt(tmp_path, monkeypatch,
                     f'echo "$@" >> {tmp_path}/bin/calls\nname=${{@##* }}\n'
                     'touch "${name%%=*}_${name#*=}_all.deb"\n')
    deb = apt_download("linux-foo", tmp_path / "debs", version="1.2-3")
    assert deb == tmp_path / "debs" / "linux-foo_1.2-3_all.deb" and deb.exists()
    assert calls.read_text().split()[-2:] == ["download", "linux-foo=1.2-3"]
    assert apt_download("linux-foo", tmp_path / "debs", version="1.2-3") == deb   # cached: no call
    assert len(calls.read_text().splitlines()) == 1


def test_a_failed_download_is_one_infra_error_naming_the_command(tmp_path, monkeypatch):
    fake_apt(tmp_path, monkeypatch, 'echo "E: Unable to locate package linux-bar" >&2\nexit 100\n')
    with pytest.raises(InfraError) as exc:
        apt_download("linux-bar", tmp_path / "debs")
    assert "apt-get" in str(exc.value) and "download linux-bar" in str(exc.value)
    assert "Unable to locate package linux-bar" in str(exc.value)


def test_lab_errors_are_infra_errors():
    assert issubclass(LabError, InfraError)
