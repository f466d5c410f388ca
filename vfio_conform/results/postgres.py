"""PostgreSQL result store (lab-wide): same tables and API as the SQLite store, needs psycopg 3."""
from __future__ import annotations

from .sql import ADDED_RUN_COLUMNS, SqlStore

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS runs (
        id BIGSERIAL PRIMARY KEY,
        session TEXT NOT NULL, profile TEXT NOT NULL, backend TEXT, devices TEXT, driver TEXT,
        kernel TEXT, harness_version TEXT, host TEXT, argv TEXT,
        started DOUBLE PRECISION NOT NULL, ended DOUBLE PRECISION,
        status TEXT NOT NULL DEFAULT 'running', profile_hash TEXT, firmware TEXT)""",
    """CREATE TABLE IF NOT EXISTS results (
        id BIGSERIAL PRIMARY KEY,
        run_id BIGINT NOT NULL REFERENCES runs(id),
        nodeid TEXT NOT NULL, test_id TEXT NOT NULL, outcome TEXT NOT NULL,
        duration DOUBLE PRECISION, message TEXT, rule TEXT, link TEXT,
        recorded DOUBLE PRECISION NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS results_run ON results(run_id)",
    "CREATE INDEX IF NOT EXISTS runs_profile ON runs(profile)",
    *(f"ALTER TABLE runs ADD COLUMN IF NOT EXISTS {n} {t}" for n, t in ADDED_RUN_COLUMNS),
]
#: pg_advisory_xact_lock key serialising schema creation between concurrent writers.
_SCHEMA_LOCK = 0x5643_5354   # "VCST"


class PostgresStore(SqlStore):
    """Result store in a PostgreSQL database; every statement commits at once (autocommit).

    Args:
        url: libpq URL, e.g. postgresql://user@host/db or postgresql:///db?host=/run/postgresql.
    """

    def __init__(self, url: str):
        try:
            import psycopg
        except ImportError:
            raise RuntimeError("a postgresql:// store needs psycopg 3: pip install 'vfio-conform[postgres]'"
                               ) from None
        self.url = url
        self.db = psycopg.connect(url, autocommit=True)
        with self.db.transaction():
            self.db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for stmt in _SCHEMA:
                self.db.execute(stmt)

    def _execute(self, sql: str, args: tuple = ()):
        return self.db.execute(sql.replace("?", "%s"), args)

    def _insert(self, table: str, row: dict) -> int:
        cur = self.db.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES "
                              f"({', '.join(['%s'] * len(row))}) RETURNING id", tuple(row.values()))
        return int(cur.fetchone()[0])

    def _text(self, value: str) -> str:
        return value.replace("\x00", "\\0")   # PostgreSQL TEXT cannot hold NUL
