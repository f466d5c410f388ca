"""Profiles: every shipped one is valid; malformed ones name the file, line and field."""
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vfio_conform.base.errors import ConfigError
from vfio_conform.targets.select import check_profile
from vfio_conform.profile import load_all, load_profile
from vfio_conform.profile.loader import MAX_PROFILE_BYTES
from vfio_conform.uapi.enums import MigFlag

ROOT = Path(__file__).resolve().parents[1]

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
    v2_same = [p for p in good if p.name.startswith("sim-") and not p.name.startswith("sim-as-")
               and p.protocol == "v2"
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
    assert out.returncode == 2
    assert "device '0000:99:00.0' not found" in out.stderr and "vfio-conform devices" in out.stderr
    assert "passed" not in out.stdout


# -- hostile YAML: refused with file:line before it can cost memory or time -----------------------

def billion_laughs(levels: int = 9) -> str:
    """The classic alias bomb: each anchor is a list of 9 aliases of the previous one (9**9 leaves)."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_within_a_memory_and_time_bound(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(billion_laughs())
    assert bomb.stat().st_size < 1600
    limit = 512 << 20      # the bomb expanded past 1.3 GB before aliases were refused
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (%d, %d)); "
            "from vfio_conform.cli.app import main; sys.exit(main(['run', '--profile', sys.argv[1], "
            "'--no-store', '--reports', sys.argv[2]]))" % (limit, limit))
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code, str(bomb), str(tmp_path / "r")],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert time.monotonic() - t0 < 30
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.strip() == (f"vfio-conform: error: {bomb}:2: a1.0: YAML alias *a0 is not allowed "
                                  "in a profile (write the value out; aliases can expand without bound)")
    assert not (tmp_path / "r").exists()


def test_huge_profile_is_refused_unparsed(tmp_path):
    big = tmp_path / "big.yaml"
    with open(big, "w") as f:
        f.write(GOOD)
        line = "# " + "x" * 1021 + "\n"
        for _ in range(50 * 1024):
            f.write(line)
    assert big.stat().st_size > 50 << 20
    t0 = time.monotonic()
    with pytest.raises(ConfigError) as info:
        load_profile(big)
    assert time.monotonic() - t0 < 2
    assert str(info.value).startswith(f"{big}:1: profile is larger than 1024 KiB")


def test_profile_of_exactly_the_cap_still_loads(tmp_path):
    path = tmp_path / "edge.yaml"
    path.write_text(GOOD + "#" * (MAX_PROFILE_BYTES - len(GOOD) - 1) + "\n")
    assert path.stat().st_size == MAX_PROFILE_BYTES
    assert load_profile(path).name == "demo"


@pytest.mark.parametrize("text,line,field,words", [
    (GOOD.replace("flags: [STOP_COPY, P2P]", "flags: !custom [STOP_COPY]"), 5, "migration.flags",
     "YAML tag !custom is not allowed"),
    (GOOD + "description: !!python/name:os.system ''\n", 6, "description",
     "YAML tag !!python/name:os.system is not allowed"),
    (GOOD + "description: !!python/object/apply:os.system ['true']\n", 6, "description",
     "YAML tag !!python/object/apply:os.system is not allowed"),
    ("!custom\nname: demo\n", 1, None, "YAML tag !custom is not allowed"),
    (GOOD + "description: !!set {sim0, sim1}\n", 6, "description", "YAML tag !!set is not allowed"),
    (GOOD + "description: 2026-11-27\n", 6, "description", "YAML tag !!timestamp is not allowed"),
    (GOOD + "? [a, b]\n: 1\n", 6, None, "a mapping key must be a plain string or number, not a list"),
    (GOOD + "migration2:\n  {x: 1}: 2\n", 7, "migration2", "not a mapping"),
    (GOOD + "timeouts: {io: !!int abc}\n", 6, "timeouts.io", "bad int value 'abc'"),
    (GOOD + "devices: " + "[" * 40 + "]" * 40 + "\n", 6, None, "nested more than 32 levels deep"),
    (GOOD + "x: &x 1\ndescription: *x\n", 7, "description", "YAML alias *x is not allowed"),
    (GOOD + "base: &b {flags: [STOP_COPY]}\nother:\n  <<: *b\n", 8, "other", "YAML tag !!merge"),
    (b"name: d\xffmo\n", 1, None, "not UTF-8 text (byte 0xff)"),
])
def test_non_plain_yaml_is_refused_with_file_line(tmp_path, text, line, field, words):
    path = tmp_path / "bad.yaml"
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    err = info.value
    assert (err.path, err.line, err.field) == (str(path), line, field), str(err)
    assert words in str(err) and str(err).startswith(f"{path}:{line}: ")


# -- the backend_config.sim section is checked when the profile is selected, not when a device opens -----------

SIM = GOOD + "backend_config:\n  sim:\n    flags: 3\n"


@pytest.mark.parametrize("text,line,field,words", [
    (SIM + "    flagz: 3\n", 9, "backend_config.sim.flagz", "unknown sim key 'flagz'"),
    (SIM.replace("flags: 3", "flags: 2"), 8, "backend_config.sim.flags", "sim flags 0x2 not one of"),
    (SIM + "    precopy_end: never\n", 9, "backend_config.sim.precopy_end", "not one of ('enomsg', 'zero')"),
    (SIM + "    faults: [{name: no_such_knob}]\n", 9, "backend_config.sim.faults.0.name", "unknown sim fault 'no_such_knob'"),
    (SIM + "    faults: [no_such_knob]\n", 9, "backend_config.sim.faults.0", "unknown sim fault 'no_such_knob'"),
    (SIM + "    faults:\n      - {name: wrong_errno, erno: 1}\n", 10, "backend_config.sim.faults.0.erno",
     "sim fault 'wrong_errno' has no parameter 'erno' (its parameters: errno)"),
    (SIM + "    faults:\n      - {name: wrong_errno, errno: EPERM}\n", 10, "backend_config.sim.faults.0.errno",
     "expected an integer, got 'EPERM'"),
    (SIM + "    faults: wrong_errno\n", 9, "backend_config.sim.faults", "expected a list of fault knobs"),
    (SIM + "    regions: 5\n", 9, "backend_config.sim.regions", "the sim cannot use this value"),
    (SIM + "    per_device:\n      sim7: {flags: 1}\n", 10, "backend_config.sim.per_device.sim7",
     "'sim7' is not one of the profile's devices"),
    (SIM + "    per_device:\n      sim1:\n        precopy_end: never\n", 11, "backend_config.sim.per_device.sim1.precopy_end",
     "not one of ('enomsg', 'zero')"),
    (SIM + "    per_device:\n      sim1: {faults: [nope]}\n", 10, "backend_config.sim.per_device.sim1.faults.0",
     "unknown sim fault 'nope'"),
])
def test_bad_sim_section_names_file_line_field(tmp_path, text, line, field, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        check_profile(load_profile(path))
    err = info.value
    assert (err.path, err.line, err.field) == (str(path), line, field), str(err)
    assert words in str(err) and str(err).startswith(f"{path}:{line}: ")


def test_shipped_sim_sections_and_waivers_pass_the_checks():
    good, bad = load_all()
    assert not bad
    for profile in good:
        check_profile(profile)


# -- devices: refused before pytest starts, exit 2, nothing written -------------------------------

def _run(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "vfio_conform", "run", *args, "--reports",
                           str(tmp_path / "r")], capture_output=True, text=True, timeout=120, cwd=ROOT)


@pytest.mark.parametrize("args,message", [
    (["--profile", "sim-p2p", "--device", "sim7"],
     "profiles/sim-p2p.yaml:5: devices: sim device 'sim7' is not defined by profile 'sim-p2p' "
     "(its devices are: sim0, sim1)"),
    (["--profile", "sim-p2p", "--device", "0000:3b:00.1", "--device", "sim1"],
     "sim device '0000:3b:00.1' is not defined by profile 'sim-p2p'"),
    (["--profile", "sim-p2p", "--device", "sim0", "--device", "sim0"],
     "device sim0 is named twice: the source and the destination of a migration must be two "
     "different devices"),
    (["--profile", "mtty", "--device", "/any/dir/vfio3"],
     "'/any/dir/vfio3' is not a VFIO device node: cdev nodes are /dev/vfio/devices/vfioN"),
])
def test_cli_refuses_bad_devices_before_running(tmp_path, args, message):
    out = _run(tmp_path, *args)
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and message in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and "collected" not in out.stdout
    assert not (tmp_path / "r").exists()
