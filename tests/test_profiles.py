"""Profiles: every shipped one is valid; malformed ones name the file, line and field."""
import subprocess
import sys

import pytest

from vfio_conform.errors import ConfigError
from vfio_conform.profile import load_all, load_profile
from vfio_conform.uapi.enums import MigFlag

GOOD = """\
name: demo
backend: sim
devices: [sim0, sim1]
migration:
  flags: [STOP_COPY, P2P]
"""


def test_shipped_profiles_are_valid():
    good, bad = load_all()
    assert not bad, bad
    names = {p.name for p in good}
    assert {"sim-stop-copy", "sim-p2p", "sim-precopy", "sim-p2p-precopy", "mtty"} <= names
    v2_same = [p for p in good if p.name.startswith("sim-") and p.protocol == "v2"
               and p.regions.peer_layout == "same"]
    assert {p.name: int(p.flags) for p in v2_same} == {
        "sim-stop-copy": 1, "sim-p2p": 3, "sim-precopy": 5, "sim-p2p-precopy": 7}


def test_minimal_profile_loads(tmp_path):
    path = tmp_path / "demo.yaml"
    path.write_text(GOOD)
    p = load_profile(path)
    assert p.flags == MigFlag.STOP_COPY | MigFlag.P2P and p.devices == ("sim0", "sim1")


@pytest.mark.parametrize("text,line,field,words", [
    (GOOD.replace("P2P]", "P2PP]"), 5, "migration.flags.1", "'P2PP' is not a migration flag"),
    (GOOD.replace("backend: sim", "backend: qemu"), 2, "backend", "'qemu' is not allowed"),
    (GOOD + "timeout: 3\n", 6, "timeout", "unknown key 'timeout'"),
    (GOOD.replace("[STOP_COPY, P2P]", "[P2P]"), 5, "migration.flags", "STOP_COPY is mandatory"),
    (GOOD + "known_issues:\n  - test: test_x\n    rule: fsm.legal-arc\n    link: nowhere\n"
     "    reason: r\n", 9, "known_issues.0.link", "is not a URL"),
    (GOOD + "hazards:\n  blocked-arc-hangs: {safe_on: ['*']}\n", 7, "hazards.blocked-arc-hangs",
     "unknown hazard"),
    (GOOD + "timeouts:\n  io: fast\n", 7, "timeouts.io", "expected a number"),
    ("name: x\nbackend: sim\nbackend: kernel\n", 3, "backend", "duplicate key"),
    ("name: [unclosed\n", 2, None, "not valid YAML"),
])
def test_malformed_profile_names_file_line_field(tmp_path, text, line, field, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    err = info.value
    assert (err.path, err.line, err.field) == (str(path), line, field), str(err)
    assert words in str(err) and str(err).startswith(f"{path}:{line}: ")


def test_cli_rejects_malformed_profile_before_running(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace("P2P]", "P2PP]"))
    out = subprocess.run([sys.executable, "-m", "vfio_conform", "run", "--profile", str(path),
                          "--no-store"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert f"{path}:5: migration.flags.1: 'P2PP' is not a migration flag" in out.stderr
    assert "collected" not in out.stdout


def test_cli_profiles_lists_and_flags_invalid(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("backend: sim", "backend: qemu"))
    out = subprocess.run([sys.executable, "-m", "vfio_conform", "profiles", str(bad)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and f"{bad}:2: backend" in out.stderr
    ok = subprocess.run([sys.executable, "-m", "vfio_conform", "profiles"], capture_output=True,
                        text=True, timeout=60)
    assert ok.returncode == 0 and "sim-p2p-precopy" in ok.stdout and "mtty" in ok.stdout


def test_unknown_profile_name_lists_known(tmp_path):
    out = subprocess.run([sys.executable, "-m", "vfio_conform", "run", "--profile", "nope"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "no profile named 'nope'" in out.stderr and "sim-p2p" in out.stderr


def test_cli_unknown_device_is_a_clear_error_before_any_test(tmp_path):
    out = subprocess.run([sys.executable, "-m", "vfio_conform", "run", "--profile", "mtty",
                          "--device", "0000:99:00.0", "--no-store", "--reports", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "device '0000:99:00.0' not found" in out.stderr and "vfio-conform devices" in out.stderr
    assert "passed" not in out.stdout
