"""docs/bad-input.md is true: each row's command, run for real, fails with its message and exit code
and writes nothing. The inputs each row describes are built here, keyed by the row's case name."""
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from test_profiles import billion_laughs
from vfio_conform.backends.kernel.sysfs import is_vfio_driver
from vfio_conform.base.errors import MAX_MESSAGE

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "bad-input.md"
GOOD = "name: demo\nbackend: sim\ndevices: [sim0, sim1]\nmigration:\n  flags: [STOP_COPY, P2P]\n"
LINK = "https://example.org/bug/1"


def _waiver(test: str, rule: str = "fsm.legal-arc") -> str:
    return GOOD + f"known_issues:\n  - {{test: \"{test}\", rule: {rule}, link: '{LINK}', reason: r}}\n"


def _big(path: Path) -> None:
    with open(path, "w") as f:
        f.write(GOOD)
        for _ in range(50 * 1024):
            f.write("# " + "x" * 1021 + "\n")


#: case -> the files its command reads (text, bytes, or a writer for big ones).
INPUTS = {
    "alias-bomb": {"bomb.yaml": billion_laughs()},
    "huge-file": {"big.yaml": _big},
    "custom-tag": {"tag.yaml": GOOD + "description: !custom x\n"},
    "python-tag": {"pytag.yaml": GOOD + "description: !!python/name:os.system ''\n"},
    "complex-key": {"key.yaml": GOOD + "? [a, b]\n: 1\n"},
    "deep-nesting": {"deep.yaml": GOOD + "description: " + "[" * 40 + "]" * 40 + "\n"},
    "not-utf8": {"bin.yaml": GOOD.replace("demo", "d\xffmo").encode("latin-1")},
    "sim-unknown-key": {"simkey.yaml": GOOD + "backend_config:\n  sim: {flagz: 3}\n"},
    "sim-unknown-fault": {"simfault.yaml": GOOD + "backend_config:\n  sim: {faults: [{name: no_such_knob}]}\n"},
    "sim-fault-param": {"simparam.yaml": GOOD + "backend_config:\n  sim: {faults: [{name: wrong_errno, errno: EPERM}]}\n"},
    "sim-bad-value": {"simflags.yaml": GOOD + "backend_config:\n  sim: {flags: 2}\n"},
    "sim-per-device": {"simdev.yaml": GOOD + "backend_config:\n  sim: {per_device: {sim7: {flags: 1}}}\n"},
    "waiver-star": {"star.yaml": _waiver("*")},
    "waiver-empty": {"empty.yaml": _waiver("")},
    "waiver-wildcard-name": {"wild.yaml": _waiver("test_*")},
    "waiver-no-function": {"nofunc.yaml": _waiver("test_no_such_test[demo*")},
    "waiver-no-rule": {"norule.yaml": GOOD + "known_issues:\n"
                                          f"  - {{test: test_arc, link: '{LINK}', reason: r}}\n"},
    "waiver-unknown-rule": {"badrule.yaml": _waiver("test_arc", "fsm.no-such-rule")},
    "sim-unknown-device": {}, "same-device-twice": {}, "cdev-elsewhere": {}, "device-not-found": {},
    "pci-not-vfio": {},
    "inventory-unquoted-bdf": {"unquoted.yaml": "devices:\n  - {name: a, pci: 0000:00:04.0, profile: qemu-edu}\n"},
    "inventory-empty": {"empty.yaml": "devices: []\n"},
    "profile-other-kernel": {"future.yaml": GOOD + "match:\n  kernel: [\">=99.0\"]\n"},
    "sim-device-escape": {"esc.yaml": GOOD.replace("[sim0, sim1]", '["sim\\e[31m0", sim1]')},
    "sim-state-size-huge": {"huge.yaml": GOOD + f"backend_config:\n  sim: {{state_size: {2**62}}}\n"},
    "sim-region-2-64": {"region.yaml": GOOD + f"backend_config:\n  sim: {{regions: [{{index: 0, size: {2**64}}}]}}\n"},
    "number-5000-digits": {"digits.yaml": GOOD + "backend_config:\n  sim: {state_size: " + "9" * 5000 + "}\n"},
    "region-size-2-64": {"regions.yaml": GOOD + f"regions:\n  BAR0: {{size: {2**64}}}\n"},
    "waiver-empty-reason": {"reason.yaml": GOOD + "known_issues:\n"
                                              f"  - {{test: test_arc, rule: fsm.legal-arc, link: '{LINK}', reason: ''}}\n"},
    "waiver-link-no-host": {"link.yaml": GOOD + "known_issues:\n"
                                            "  - {test: test_arc, rule: fsm.legal-arc, link: 'http://', reason: r}\n"},
    "not-a-profile": {"cfg.yaml": "api_token: hunter2\nuser: bob\n"},
    "vfio-user-no-socket": {},
}


def doc_rows() -> list[dict]:
    text = DOC.read_text()
    table = text.split("<!-- bad-input-table -->")[1].split("<!-- /bad-input-table -->")[0]
    rows = []
    for line in table.strip().splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        assert len(cells) == 5, line
        case, _, command, message, code = cells
        rows.append({"case": case, "command": command.strip("`"), "message": message.strip("`"),
                     "exit": int(code)})
    return rows


ROWS = doc_rows()


def test_every_case_has_a_row_and_every_row_an_input():
    assert [r["case"] for r in ROWS] == list(INPUTS)


def _host_pci_not_vfio(sysfs: Path = Path("/sys/bus/pci/devices")) -> tuple[str, str] | None:
    for dev in sorted(sysfs.iterdir()) if sysfs.is_dir() else ():
        driver = os.path.basename(os.readlink(dev / "driver")) if (dev / "driver").is_symlink() else None
        if not is_vfio_driver(driver):
            return dev.name, driver or "no driver"
    return None


@pytest.mark.parametrize("row", ROWS, ids=[r["case"] for r in ROWS])
def test_documented_bad_input_is_refused_as_documented(tmp_path, row):
    subs = {"profiles": str(ROOT / "profiles"), "release": os.uname().release}
    if "{bdf}" in row["command"]:
        found = _host_pci_not_vfio()
        if found is None:
            pytest.skip("this host has no PCI device outside VFIO to try (tests/test_kernel_backend.py "
                        "covers the check on a fake sysfs)")
        subs["bdf"], subs["driver"] = found
    for name, content in INPUTS[row["case"]].items():
        path = tmp_path / name
        if callable(content):
            content(path)
        else:
            (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    argv = shlex.split(row["command"].format(**subs))
    assert argv[0] == "vfio-conform"
    reports = tmp_path / "reports"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-m", "vfio_conform", *argv[1:], "--reports", str(reports)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    lines = out.stderr.splitlines()
    assert out.returncode == row["exit"], out.stdout[-2000:] + out.stderr
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("vfio-conform: error: " + row["message"].format(**subs)), lines[0]
    assert len(lines[0]) <= len("vfio-conform: error: ") + MAX_MESSAGE and lines[0].isprintable(), lines[0]
    assert "collected" not in out.stdout and not reports.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(INPUTS[row["case"]])


#: the files each row of the command table finds in its directory
COMMAND_INPUTS = {"bad.yaml": "x: [\n"}


def command_rows() -> list[dict]:
    table = DOC.read_text().split("<!-- command-input-table -->")[1].split("<!-- /command-input-table -->")[0]
    rows = []
    for line in table.strip().splitlines()[2:]:
        case, _, command, message, code = [c.strip() for c in line.strip().strip("|").split(" | ")]
        rows.append({"case": case, "command": command.strip("`"), "message": message.strip("`"),
                     "exit": int(code)})
    return rows


COMMAND_ROWS = command_rows()


@pytest.mark.parametrize("row", COMMAND_ROWS, ids=[r["case"] for r in COMMAND_ROWS])
def test_command_bad_input_is_refused_as_documented(tmp_path, row):
    for name, content in COMMAND_INPUTS.items():
        (tmp_path / name).write_text(content)
    words = shlex.split(row["command"])
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("VFIO_CONFORM_PROFILES", None)
    while "=" in words[0]:
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    assert words[0] == "vfio-conform"
    out = subprocess.run([sys.executable, "-m", "vfio_conform", *words[1:]], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path, env=env)
    lines = out.stderr.splitlines()
    assert out.returncode == row["exit"], out.stdout[-2000:] + out.stderr
    assert len(lines) == 1 and lines[0].startswith(row["message"]), out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(COMMAND_INPUTS)
    assert (tmp_path / "bad.yaml").read_text() == COMMAND_INPUTS["bad.yaml"]
