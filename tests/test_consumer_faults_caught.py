"""The clean sim passes the consumer scenarios for all four flag sets. Each consumer fault knob is
proven caught, naming its rule, by tests/test_rule_proof.py (with every other knob)."""
import pytest

from suite_runner import run_suites, write_profile

SIM_PROFILES = ["sim-stop-copy", "sim-p2p", "sim-precopy", "sim-p2p-precopy"]


@pytest.mark.parametrize("base", SIM_PROFILES)
def test_clean_sim_passes_consumer_scenarios(tmp_path, base):
    code, rows, out = run_suites(write_profile(tmp_path, base, f"clean-{base}"), tmp_path,
                                 areas=("consumers",))
    bad = [r for r in rows if r["outcome"] not in ("pass", "not-supported")]
    assert code == 0 and not bad, (bad[:5], out[-3000:])
    passed = {r["test_id"].split("[")[0] for r in rows if r["outcome"] == "pass"}
    for scenario in ("test_consumer_qemu_source", "test_consumer_qemu_destination",
                     "test_consumer_qemu_recovery", "test_consumer_ch_snapshot", "test_consumer_ch_restore"):
        assert scenario in passed, (scenario, sorted(passed))


def test_precopy_info_failure_is_what_qemu_makes_of_it(tmp_path):
    """A device reporting PRE_COPY whose PRECOPY_INFO fails: QEMU swallows it (0 initial, 0 dirty
    bytes) and its migration converges (measured with QEMU 10 on mtty_noinfo), so QEMU's pre-copy
    scenario passes with a 'should' finding; the data suites fail the uAPI rule
    (precopy.info-works-in-precopy) that makes the ioctl mandatory."""
    profile = write_profile(tmp_path, "sim-precopy", "precopy-info-fails",
                            faults=[{"name": "precopy_info_fails"}])
    code, rows, out = run_suites(profile, tmp_path, "-k", "test_consumer_qemu_source",
                                 areas=("consumers",))
    assert rows and {r["outcome"] for r in rows} == {"pass"}, (rows, out[-3000:])
    info = [r for r in rows if r["test_id"].startswith("test_consumer_qemu_source_precopy_info[")]
    assert info and "consumer.qemu-precopy-accounting" in (info[0]["should"] or ""), info
    assert "counts 0 initial and 0 dirty bytes" in (info[0]["message"] or ""), info
    (tmp_path / "data").mkdir()
    code, rows, out = run_suites(profile, tmp_path / "data", "-k", "test_precopy_info_works_in_precopy_states",
                                 areas=("data",))
    assert {(r["outcome"], r["rule"]) for r in rows} == {("fail", "precopy.info-works-in-precopy")}, rows


def test_data_size_failing_in_precopy_fails_qemus_source_line(tmp_path):
    """A device whose MIG_DATA_SIZE fails in pre-copy (the suites fail it on datasize.any-state):
    QEMU reports no error but counts 100 GiB pending every iteration and never converges, so the
    QEMU source scenario fails on consumer.qemu-converges, not pass."""
    profile = write_profile(tmp_path, "sim-precopy", "data-size-only-stopped",
                            faults=[{"name": "data_size_only_stopped"}])
    code, rows, out = run_suites(profile, tmp_path, "-k", "test_consumer_qemu_source and not abort "
                                 "and not precopy_info", areas=("consumers",))
    assert [(r["outcome"], r["rule"]) for r in rows] == [("fail", "consumer.qemu-converges")], \
        (rows, out[-3000:])
    assert "counts 100 GiB pending" in rows[0]["message"] and "never converges" in rows[0]["message"]
    assert code == 1
