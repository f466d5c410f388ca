"""Each run's waivers are stored typed (table `waivers`), read back, and carried by import_from."""
import sqlite3

from vfio_conform.results import RunMeta, import_runs, open_store
from vfio_conform.results.waivers import WaiverUse, load_waivers, record_waivers

USES = [WaiverUse(0, "test_dma_start_twice_fails[mtty*", "dma.start-once", "https://x/1", "stub", 1, 1),
        WaiverUse(1, "test_arc[mtty:STOP->*", "fsm.legal-arc", "https://x/2", "old", 0, 0)]


def _meta():
    return RunMeta(profile="mtty", backend="kernel", devices="d", driver="mtty", kernel="6.12",
                   harness_version="0", host="h", session="s")


def check_round_trip(store_url, other_url):
    store = open_store(store_url)
    run = store.begin_run(_meta())
    assert load_waivers(store, run) == []           # no table yet: nothing, and nothing created
    record_waivers(store, run, USES)
    assert load_waivers(store, run) == USES
    assert [u.unused for u in load_waivers(store, run)] == [False, True]
    store.end_run(run, "finished")
    store.close()
    other = open_store(other_url)
    (new,) = import_runs(other, store_url)
    assert load_waivers(other, new) == USES
    other.close()


def test_waivers_round_trip_in_sqlite(tmp_path):
    check_round_trip(str(tmp_path / "a.sqlite"), str(tmp_path / "b.sqlite"))


def test_reading_waivers_of_an_older_store_creates_nothing(tmp_path):
    store = open_store(tmp_path / "old.sqlite")
    run = store.begin_run(_meta())
    assert load_waivers(store, run) == []
    store.close()
    tables = {r[0] for r in sqlite3.connect(tmp_path / "old.sqlite").execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "waivers" not in tables and "runs" in tables
