"""`vfio-conform profile check`: a profile explained without opening a device; bad ones refused."""
from __future__ import annotations

import pytest

from run_cli import vc
from vfio_conform.backends import registry
from vfio_conform.tools.profile_check import RUNS, check_profile_file

FIXED = "6.12.117+deb12-amd64"      # Debian's 6.12 with the vfio_mig_get_next_state() fix
OLD = "6.1.0-13-amd64"


@pytest.fixture(autouse=True)
def no_device_is_opened(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("profile check opened a device")
    monkeypatch.setattr(registry, "open_device", refuse)
    for backend in registry.names():
        monkeypatch.setattr(type(registry.get(backend)), "open", refuse)


def _by_suite(report, suite):
    return [d for d in report.decisions if d.suite == suite]


def test_hazard_arcs_are_gated_by_kernel_release():
    old = check_profile_file("mtty", OLD)
    gated = [d for d in old.decisions if d.outcome == "gated"]
    assert sorted(d.nodeid.split("[")[1] for d in gated) == ["mtty:STOP_COPY->PRE_COPY]",
                                                             "mtty:STOP_COPY->PRE_COPY_P2P]"]
    assert all(d.hazard == "blocked-arc-hang" for d in gated)
    assert next(h for h in old.hazards if h.name == "blocked-arc-hang").gated
    fixed = check_profile_file("mtty", FIXED)
    assert not [d for d in fixed.decisions if d.outcome == "gated"]
    hang = next(h for h in fixed.hazards if h.name == "blocked-arc-hang")
    assert not hang.gated and hang.arcs == ("STOP_COPY->PRE_COPY", "STOP_COPY->PRE_COPY_P2P")
    text = old.render()
    assert "blocked-arc-hang: GATED" in text and "gated 2" in text


def test_protocol_and_features_decide_not_supported():
    mtty = check_profile_file("mtty", FIXED)
    v1 = _by_suite(mtty, "suites/v1/test_v1.py")
    assert v1 and all(d.outcome == "not-supported" and "needs v1" in d.reason for d in v1)
    assert all(d.outcome == RUNS for d in _by_suite(mtty, "suites/depth/test_dma_logging.py"))
    sc = check_profile_file("sim-stop-copy", FIXED)       # no DMA logging, no PRE_COPY
    dma = _by_suite(sc, "suites/depth/test_dma_logging.py")
    assert dma and all(d.outcome == "not-supported" and "dma_logging" in d.reason for d in dma)
    v1dev = check_profile_file("sim-v1-mmap", FIXED)
    assert all(d.outcome == "not-supported" for d in _by_suite(v1dev, "suites/fsm/test_arcs.py"))
    assert all(d.outcome == RUNS for d in _by_suite(v1dev, "suites/v1/test_v1.py"))
    edu = check_profile_file("qemu-edu", FIXED)          # no verify hook, no migration
    assert all(d.outcome == "not-supported" for d in _by_suite(edu, "suites/depth/test_roundtrip.py"))


def test_transport_gate_on_vfio_user():
    report = check_profile_file("libvfio-user-sample", FIXED)
    assert any(d.outcome == "not-supported" and "transport" in d.reason for d in report.decisions)


def test_waivers_are_counted_against_collected_tests():
    report = check_profile_file("mtty", FIXED)
    assert [n for _, _, n in report.waivers] == [1, 1, 1]


def test_cli_prints_the_plan_and_exits_0():
    result = vc("profile", "check", "mtty", "--kernel-release", OLD)
    assert result.returncode == 0, result.stderr
    assert "profile mtty" in result.stdout and "suites/v1/test_v1.py" in result.stdout
    assert "not-supported x11: profile mtty speaks migration protocol v2" in result.stdout
    assert "blocked-arc-hang: GATED" in result.stdout


@pytest.mark.parametrize("body, where", [
    ("name: x\nbackend: sim\nmigration: {flags: [STOP_COPY]}\nfeatures: {resett: true}\n", ":4: features.resett: unknown key"),
    ("name: x\nbackend: kernel\nmigration:\n  flags: [STOP_COPY, BOGUS]\n", ":4: migration.flags.1: 'BOGUS' is not a migration flag"),
    ("name: x\nbackend: kernel\nmigration: {flags: [STOP_COPY]}\nknown_issues:\n"
     "  - {test: test_no_such_function, rule: fsm.legal-arc, link: 'https://x', reason: r}\n",
     ":5: known_issues.0.test: no test function"),
])
def test_bad_profile_is_one_line_exit_2(tmp_path, body, where):
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    result = vc("profile", "check", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert f"{path}{where}" in line, line
