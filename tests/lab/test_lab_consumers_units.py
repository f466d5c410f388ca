"""The real-consumer lane without QEMU: parsing of QEMU's answers, cause classification, verdicts,
the store rows, and the not-supported path for vfio-pci profiles (no boot)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from vfio_conform.cli.app import main as cli_main
from vfio_conform.qemu_lab import consumer_guest as guest
from vfio_conform.qemu_lab import consumers
from vfio_conform.qemu_lab.consumer_verdict import (IOVA_BITMAP_LINK, Attempt, Cause, diagnose, finding,
                                               iommufd_driver, judge, judge_without_migration,
                                               kernel_config)
from vfio_conform.qemu_lab.consumers import _exit_code, verdicts_from
from vfio_conform.qemu_lab.qemu_chroot import DEFAULT_MIRROR, debian_mirror
from vfio_conform.profile import find_profile
from vfio_conform.results import Outcome, ResultStore, RunMeta, TestRecord

HERE = Path(__file__).resolve().parent
#: What the lab recorded for stock mtty on Debian's 6.12.117 kernel with QEMU 10.0 (trixie).
OBSERVED = json.loads((HERE / "data" / "consumers-mtty-deb6.12.json").read_text())
QEMU = OBSERVED["qemu"]
NO_IOMMUFD = {"CONFIG_VFIO": "m", "CONFIG_IOMMUFD": "n"}
WITH_IOMMUFD = {**NO_IOMMUFD, "CONFIG_IOMMUFD_DRIVER": "y"}
DMA_NOTE = ("DMA logging: declared, but REPORT is EOPNOTSUPP on this kernel (CONFIG_IOMMUFD_DRIVER not set): "
            "QEMU needs x-device-dirty-page-tracking=off")


def _entry() -> dict:
    return copy.deepcopy(OBSERVED["profiles"][0])


def _default() -> Attempt:
    return Attempt.from_json(_entry()["attempts"][0])


# -- parsing what QEMU answers ------------------------------------------------------------------

def test_io_bar0_waits_for_seabios_and_finds_the_device() -> None:
    def pci(addr: int, qdev: str = "vc0") -> list[dict]:
        return [{"bus": 0, "devices": [
            {"qdev_id": "", "regions": [{"bar": 0, "type": "io", "address": 0xC000, "size": 8}]},
            {"qdev_id": qdev, "regions": [{"bar": 1, "type": "io", "address": 0xC010, "size": 8},
                                          {"bar": 0, "type": "io", "address": addr, "size": 8}]}]}]
    assert guest.io_bar0(pci(0xFFFFFFFFFFFFFFFF), "vc0") is None      # unmapped / I/O off
    assert guest.io_bar0(pci(0), "vc0") is None
    assert guest.io_bar0(pci(0xC008), "vc0") == 0xC008
    assert guest.io_bar0(pci(0xC008, qdev="other"), "vc0") is None


def test_parse_port_read() -> None:
    assert guest.parse_port_read("portb[0xc00f] = 0x5a\r\n") == 0x5A
    assert guest.parse_port_read("port[0xc00f] = 0xa5") == 0xA5
    with pytest.raises(ValueError):
        guest.parse_port_read("unknown command: 'i'")


def test_qemu_errors_and_warnings_split_and_dedupe() -> None:
    stderr = ("qemu-system-x86_64: -device vfio-pci,id=vc0: warning: X: VFIO device doesn't support "
              "device and IOMMU dirty tracking\n"
              "qemu-system-x86_64: vfio: Cannot reset device X, no available reset mechanism.\n"
              "qemu-system-x86_64: vfio: Cannot reset device X, no available reset mechanism.\n"
              "unrelated line\n"
              "qemu-system-x86_64: ram_save_setup failed: Operation not supported\n")
    assert guest.qemu_errors(stderr) == ["vfio: Cannot reset device X, no available reset mechanism.",
                                         "ram_save_setup failed: Operation not supported"]
    assert guest.qemu_warnings(stderr) == ["warning: X: VFIO device doesn't support device and IOMMU "
                                           "dirty tracking"]


def test_kernel_config_parsing(tmp_path: Path) -> None:
    cfg = tmp_path / "config"
    cfg.write_text("CONFIG_VFIO=m\n# CONFIG_IOMMUFD is not set\nCONFIG_LOCALVERSION=\"\"\n")
    parsed = kernel_config(cfg)
    assert parsed == {"CONFIG_VFIO": "m", "CONFIG_IOMMUFD": "n", "CONFIG_LOCALVERSION": '""'}
    assert iommufd_driver(parsed) is False               # hidden symbol: absent means off
    assert iommufd_driver({"CONFIG_IOMMUFD_DRIVER": "y"}) is True
    assert iommufd_driver(kernel_config(tmp_path / "missing")) is None


def test_debian_mirror_from_apt_sources(tmp_path: Path) -> None:
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "debian.sources").write_text("Types: deb\n# http://snapshot/x\nURIs: http://mirror.example/debian\n"
                                      "Suites: bookworm\n\nURIs: http://mirror.example/debian-security\n")
    assert debian_mirror((tmp_path / "none", d), env={}) == "http://mirror.example/debian"
    one = tmp_path / "sources.list"
    one.write_text("deb [arch=amd64] https://m2.example/debian/ bookworm main\n")
    assert debian_mirror((one,), env={}) == "https://m2.example/debian"
    assert debian_mirror((one,), env={"VFIO_LAB_DEBIAN_MIRROR": "http://x/debian/"}) == "http://x/debian"
    assert debian_mirror((tmp_path / "none",), env={}) == DEFAULT_MIRROR


# -- cause classification ------------------------------------------------------------------------

def test_dma_report_eopnotsupp_is_kernel_configuration_without_iommufd_driver() -> None:
    diag = diagnose(_default(), NO_IOMMUFD)
    assert diag.cause is Cause.KERNEL_CONFIG and "CONFIG_IOMMUFD_DRIVER" in diag.why


def test_dma_report_eopnotsupp_with_iommufd_driver_is_the_driver() -> None:
    assert diagnose(_default(), WITH_IOMMUFD).cause is Cause.DRIVER


def test_dma_report_eopnotsupp_without_config_is_inferred_from_the_errno() -> None:
    diag = diagnose(_default(), None)
    assert diag.cause is Cause.KERNEL_CONFIG and "not available" in diag.why


@pytest.mark.parametrize("stage,error,cause", [
    ("compare", "destination scratch register reads 0x00, the source wrote 0x5a", Cause.DRIVER),
    ("incoming", "load of migration failed: Input/output error; vfio: error while loading state", Cause.DRIVER),
    ("migrate", "vfio: Failed to set state STOP_COPY: Invalid argument", Cause.DRIVER),
    ("src-default-start", "Property 'vfio-pci.x-device-dirty-page-tracking' not found", Cause.CONSUMER),
    ("bios", "SeaBIOS did not assign the device's I/O BAR0 within 150s", Cause.LAB),
    ("harness", "OSError: [Errno 2] No such file or directory", Cause.LAB),
])
def test_other_failures_are_classified(stage: str, error: str, cause: Cause) -> None:
    attempt = Attempt("default", (), False, stage, error, 0x5A, None, {})
    assert diagnose(attempt, NO_IOMMUFD).cause is cause


# -- verdicts --------------------------------------------------------------------------------------

def test_observed_mtty_verdict() -> None:
    """Default options fail (kernel configuration, QEMU's own text kept), the workaround passes."""
    verdict = judge("mtty", True, _entry(), NO_IOMMUFD, QEMU)
    default, workaround, dma = verdict.records
    assert verdict.cause is Cause.KERNEL_CONFIG
    assert default.test_id == "consumer_qemu_migrate[mtty:default]"
    assert default.outcome is Outcome.KNOWN_ISSUE and default.link == IOVA_BITMAP_LINK
    assert default.rule == "consumer.qemu-real-migration"
    assert "Failed to get DMA logging report" in default.message and "ram_save_setup failed" in default.message
    assert "cause: kernel configuration" in default.message
    assert workaround.test_id == "consumer_qemu_migrate[mtty:x-device-dirty-page-tracking=off]"
    assert workaround.outcome is Outcome.PASS and "0xa5 arrived" in workaround.message
    assert dma.test_id == "consumer_qemu_dma_logging[mtty]" and dma.outcome is Outcome.KNOWN_ISSUE
    assert dma.message == DMA_NOTE and dma.rule == "consumer.qemu-dma-logging-usable"
    assert "works with x-device-dirty-page-tracking=off" in verdict.summary
    assert _exit_code([verdict]) == 0


def test_default_success_passes_and_runs_no_workaround() -> None:
    entry = _entry()
    ok = dict(entry["attempts"][1], label="default", options=[], written=0x5A, read=0x5A)
    entry["attempts"] = [ok]
    verdict = judge("mtty", True, entry, WITH_IOMMUFD, QEMU)
    assert [r.outcome for r in verdict.records] == [Outcome.PASS, Outcome.PASS]
    assert verdict.records[0].test_id == "consumer_qemu_migrate[mtty:default]"
    assert finding(verdict, (7, {"pass": 10})) is None


def test_undeclared_dma_logging_is_not_supported() -> None:
    verdict = judge("mtty", False, _entry(), NO_IOMMUFD, QEMU)
    assert verdict.records[-1].outcome is Outcome.NOT_SUPPORTED


def test_lost_register_is_a_driver_failure() -> None:
    entry = _entry()
    for attempt in entry["attempts"]:
        attempt.update(ok=False, stage="compare", read=0,
                       error=f"destination scratch register reads 0x00, the source wrote {attempt['written']:#04x}")
    verdict = judge("mtty", True, entry, NO_IOMMUFD, QEMU)
    assert verdict.cause is Cause.DRIVER
    assert verdict.records[0].outcome is Outcome.FAIL and verdict.records[1].outcome is Outcome.FAIL
    assert verdict.records[2].outcome is Outcome.SKIPPED        # not a DMA logging question
    assert _exit_code([verdict]) == 1


def test_finding_against_the_suites_verdict() -> None:
    verdict = judge("mtty", True, _entry(), NO_IOMMUFD, QEMU)
    line = finding(verdict, (12, {"pass": 300, "not-supported": 3, "known-issue": 2}))
    assert line is not None and line.startswith("FINDING: the suites call mtty conformant (run #12: 300 pass")
    assert "[cause: kernel configuration]" in line
    assert finding(verdict, (12, {"pass": 300, "fail": 1})) is None      # the suites' failure speaks
    assert "no suites run" in (finding(verdict, None) or "")


def test_missing_profile_in_the_guest_document_is_an_infra_error() -> None:
    doc = {"qemu": QEMU, "setup_error": "CalledProcessError: mount failed", "profiles": []}
    (verdict,) = verdicts_from(doc, [find_profile("mtty")], NO_IOMMUFD)
    assert verdict.records[0].outcome is Outcome.INFRA_ERROR and "mount failed" in verdict.records[0].message
    assert _exit_code([verdict]) == 3


# -- vfio-pci devices: QEMU's refusal is not-supported, with its reason ------------------------------

PCI_OBSERVED = json.loads((HERE / "data" / "consumers-vfio-pci-deb6.12.json").read_text())


def test_vfio_pci_refusal_is_not_supported_with_qemus_reason() -> None:
    for entry in PCI_OBSERVED["profiles"]:
        (rec,) = judge_without_migration(entry["profile"], entry, QEMU).records
        assert rec.outcome is Outcome.NOT_SUPPORTED, rec
        assert "variant driver" in rec.message and "VFIO migration is not supported in kernel" in rec.message


def test_vfio_pci_probe_that_never_asked_is_an_infra_error() -> None:
    entry = copy.deepcopy(PCI_OBSERVED["profiles"][0])
    entry["attempts"][0].update(stage="pci-src-start", error="vfio 0000:00:10.0: group 3 is not viable")
    (rec,) = judge_without_migration("qemu-edu", entry, QEMU).records
    assert rec.outcome is Outcome.INFRA_ERROR and "not viable" in rec.message


# -- the lane's bookkeeping: store rows per profile, exit code, CLI (boot replaced) -------------------

@pytest.fixture
def canned_boots(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """Replace the guest boot by the observed guest documents; returns the modes booted."""
    booted: list[str] = []

    def fake_boot(mode, profiles, reports, timeout):
        booted.append(mode)
        doc = OBSERVED if mode == "mdev" else PCI_OBSERVED
        return consumers._Boot(verdicts_from(doc, profiles, NO_IOMMUFD), tmp_path / "lab" / mode,
                               doc["qemu"], doc["kernel"], {p.name: ["dev"] for p in profiles})
    monkeypatch.setattr(consumers, "_boot", fake_boot)
    return booted


def test_lane_records_a_run_per_profile_beside_the_suites(canned_boots: list[str], tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "results.sqlite")
    suites = store.begin_run(RunMeta("mtty", "kernel", "a,b", "mtty", "6.12", "0", "h", "s1"))
    store.record(suites, TestRecord("n", "test_arc[mtty:RUNNING->STOP]", Outcome.PASS, 0.1))
    store.end_run(suites, "finished")
    run = consumers.run_consumers(["mtty", "qemu-edu"], tmp_path)
    assert canned_boots == ["mdev", "pci"] and run.exit_code == 0
    runs = {r["profile"]: r for r in store.runs()}
    assert set(runs) == {"mtty", "mtty@qemu", "qemu-edu@qemu"}
    assert runs["mtty@qemu"]["session"] == runs["qemu-edu@qemu"]["session"] != "s1"
    rows = {r["test_id"]: r for r in store.results(runs["mtty@qemu"]["id"])}
    default = rows["consumer_qemu_migrate[mtty:default]"]
    assert default["outcome"] == "known-issue"
    assert default["message"].startswith(f"FINDING: the suites call mtty conformant (run #{suites}: 1 pass)")
    assert rows["consumer_qemu_dma_logging[mtty]"]["message"] == DMA_NOTE
    (edu,) = store.results(runs["qemu-edu@qemu"]["id"])
    assert edu["outcome"] == "not-supported"
    summary = (run.run_dir / "consumers.md").read_text()
    assert "**FINDING: the suites call mtty conformant" in summary and "qemu-edu" in summary


def test_cli_consumers_prints_every_record(canned_boots: list[str], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["lab", "consumers", "--profile", "mtty", "--reports", str(tmp_path)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "known-issue consumer_qemu_migrate[mtty:default]" in out
    assert "pass consumer_qemu_migrate[mtty:x-device-dirty-page-tracking=off]" in out
    assert canned_boots == ["mdev"]


def test_a_guest_that_died_keeps_the_profiles_it_finished() -> None:
    doc = dict(copy.deepcopy(OBSERVED), setup_error="lab infrastructure error: [timeout] guest did not finish")
    done, lost = verdicts_from(doc, [find_profile("mtty"), find_profile("mtty-sc")], NO_IOMMUFD)
    assert done.records[0].outcome is Outcome.KNOWN_ISSUE
    assert lost.records[0].outcome is Outcome.INFRA_ERROR and "[timeout]" in lost.records[0].message


def test_qmp_client_skips_events_and_keeps_qemus_error(tmp_path: Path) -> None:
    """The guest's QMP client against a scripted server: greeting, capabilities, an event, an error."""
    import socket
    import threading

    path = tmp_path / "q.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    seen: list[str] = []

    def serve() -> None:
        conn, _ = server.accept()
        f = conn.makefile("rwb")
        f.write(b'{"QMP": {"version": {}, "capabilities": []}}\n')
        f.flush()
        replies = [b'{"return": {}}\n',
                   b'{"event": "STOP", "timestamp": {}}\n{"return": {"status": "completed"}}\n',
                   b'{"error": {"class": "GenericError", "desc": "ram_save_setup failed: Operation not supported"}}\n']
        for reply in replies:
            seen.append(json.loads(f.readline())["execute"])
            f.write(reply)
            f.flush()
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    qmp = guest.Qmp(path, 5.0)
    assert qmp.cmd("query-migrate") == {"status": "completed"}
    with pytest.raises(guest.StepError) as err:
        qmp.cmd("migrate", uri="file:/tmp/x")
    assert err.value.stage == "migrate" and str(err.value) == "ram_save_setup failed: Operation not supported"
    assert seen == ["qmp_capabilities", "query-migrate", "migrate"]
    qmp.close()
    thread.join(5)
    server.close()


def test_qmp_client_gives_up_when_qemu_died(tmp_path: Path) -> None:
    with pytest.raises(guest.StepError, match="exited before its QMP socket opened"):
        guest.Qmp(tmp_path / "none.sock", 30.0, alive=lambda: False)


def test_host_option_names_pci_or_mdev() -> None:
    assert guest.host_option("0000:00:10.0") == "host=0000:00:10.0"
    assert guest.host_option("c85ed9d0-d755-5a11-94d1-94756e08469e") == \
        "sysfsdev=/sys/bus/mdev/devices/c85ed9d0-d755-5a11-94d1-94756e08469e"


def test_summary_names_the_cause_of_a_failed_workaround() -> None:
    entry = _entry()
    entry["attempts"][1].update(ok=False, stage="compare", read=0,
                                error="destination scratch register reads 0x00, the source wrote 0xa5")
    verdict = judge("mtty", True, entry, NO_IOMMUFD, QEMU)
    assert verdict.summary.endswith("(compare: destination scratch register reads 0x00, the source wrote "
                                    "0xa5) [cause: driver]")
    assert "state did not arrive" in verdict.records[1].message


# -- convergence: what QEMU counted in its exact pending-size queries ------------------------------

#: What the lab recorded for mtty, mtty_noinfo (PRECOPY_INFO fails) and mtty_nosize (MIG_DATA_SIZE
#: fails in PRE_COPY) on Debian's 6.12.117 kernel with QEMU 10.0.13 (tests/lab/test_lab_converges.py).
CONVERGE = json.loads((HERE / "data" / "consumers-converge-deb6.12.json").read_text())


def test_pending_exact_trace_lines_are_counted() -> None:
    line = ("123@1765000000.000001:vfio_state_pending_exact  (a5c7) precopy 107374530560 postcopy 0 "
            "stopcopy size 107374182400 precopy initial size 24 precopy dirty size 0")
    got = guest.pending_exact([line, "noise", line.replace("530560", "534656")])
    assert got == {"queries": 2, "stopcopy": [107374182400], "last_pending": 107374534656}
    assert guest.pending_exact([]) == {"queries": 0, "stopcopy": [], "last_pending": None}
    msg = guest.not_converged({"status": "active", "ram": {"dirty-sync-count": 595, "remaining": 0},
                               "vfio": {"transferred": 24}, "expected-downtime": 99}, 60)
    assert msg.startswith(guest.NOT_CONVERGED) and "595 dirty-sync rounds" in msg and "cancelled" in msg


@pytest.mark.parametrize("driver,outcome", [("mtty", Outcome.PASS), ("mtty-noinfo", Outcome.PASS),
                                             ("mtty-nosize", Outcome.FAIL)])
def test_convergence_verdict_from_the_recorded_lab_run(driver, outcome) -> None:
    entry = next(p for p in CONVERGE["profiles"] if p["profile"] == driver)
    verdict = judge(driver, True, entry, NO_IOMMUFD, CONVERGE["qemu"])
    rec = {r.test_id: r for r in verdict.records}[
        f"consumer_qemu_converges[{driver}:x-device-dirty-page-tracking=off]"]
    assert rec.outcome is outcome and rec.rule == "consumer.qemu-converges", rec
    assert "exact pending-size queries" in rec.message
    if outcome is Outcome.FAIL:
        assert "100 GiB fallback: MIG_DATA_SIZE failed" in rec.message and "cause: driver" in rec.message
        migrate = {r.test_id: r for r in verdict.records}[
            f"consumer_qemu_migrate[{driver}:x-device-dirty-page-tracking=off]"]
        assert migrate.outcome is Outcome.FAIL and "never reached switch-over" in migrate.message
    else:
        assert "stop-copy size 96" in rec.message


def test_a_switch_over_without_an_exact_query_is_not_determined() -> None:
    entry = copy.deepcopy(next(p for p in CONVERGE["profiles"] if p["profile"] == "mtty"))
    entry["attempts"][-1]["pending_exact"] = {"queries": 0, "stopcopy": [], "last_pending": None}
    verdict = judge("mtty", True, entry, NO_IOMMUFD, QEMU)
    rec = verdict.records[-1]
    assert rec.outcome is Outcome.SKIPPED and "no exact pending-size query" in rec.message


@pytest.mark.parametrize("stage", ["compare", "incoming"])
def test_a_failure_after_the_switch_over_still_decides_convergence(stage) -> None:
    """A driver that loses state (mtty_lossy: the register does not arrive) or a destination that
    refuses the stream fails after QEMU converged: the converges record is there, and passes."""
    entry = copy.deepcopy(next(p for p in CONVERGE["profiles"] if p["profile"] == "mtty"))
    last = entry["attempts"][-1]
    last.update(ok=False, stage=stage, error="destination scratch register reads 0x00, the source wrote 0xa5")
    verdict = judge("mtty", True, entry, NO_IOMMUFD, QEMU)
    rec = {r.test_id: r for r in verdict.records}["consumer_qemu_converges[mtty:x-device-dirty-page-tracking=off]"]
    assert rec.outcome is Outcome.PASS and "converged" in rec.message, rec
    last.update(stage="bios", error="SeaBIOS did not assign the device's I/O BAR0")    # never migrated
    verdict = judge("mtty", True, entry, NO_IOMMUFD, QEMU)
    assert not [r for r in verdict.records if r.rule == "consumer.qemu-converges"]
