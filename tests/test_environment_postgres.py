"""The run environment on a PostgreSQL store: stored, read back, and added to an old store's runs."""
import pytest

from test_environment import _env, _meta
from vfio_conform.results import open_store

psycopg = pytest.importorskip("psycopg", reason="pip install 'vfio-conform[postgres]'")
pytestmark = pytest.mark.xdist_group("postgres")


def test_environment_round_trip_and_migration(pg_server):
    url = pg_server("environment")
    with psycopg.connect(url, autocommit=True) as db:      # a store from before environments
        db.execute("""CREATE TABLE runs (id BIGSERIAL PRIMARY KEY, session TEXT NOT NULL,
            profile TEXT NOT NULL, backend TEXT, devices TEXT, driver TEXT, kernel TEXT,
            harness_version TEXT, host TEXT, argv TEXT, started DOUBLE PRECISION NOT NULL,
            ended DOUBLE PRECISION, status TEXT NOT NULL DEFAULT 'finished')""")
        db.execute("INSERT INTO runs (session, profile, started) VALUES ('s', 'p', 1)")
    reader = open_store(url, readonly=True)
    assert reader.environment(1) is None
    reader.close()
    store = open_store(url)
    run = store.begin_run(_meta("new"))
    store.set_environment(run, _env())
    assert store.environment(run) == _env() and store.environment(1) is None
    assert store.run(run)["firmware"] == "1.0"
    store.close()
