"""PostgreSQL result store (lab-wide): same tables and API as the SQLite store, needs psycopg 3."""
from __future__ import annotations

from .liveness import Here
from .sql import ADDED_RESULT_COLUMNS, ADDED_RUN_COLUMNS, SqlStore, StoreError

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
    *(f"ALTER TABLE results ADD COLUMN IF NOT EXISTS {n} {t}" for n, t in ADDED_RESULT_COLUMNS),
]
#: pg_advisory_xact_lock key serialising schema creation between concurrent writers.
_SCHEMA_LOCK = 0x5643_5354   # "VCST"
#: Seconds to wait for the server before the store counts as unreachable (unless the URL says).
CONNECT_TIMEOUT_S = 10


class PostgresStore(SqlStore):
    """Result store in a PostgreSQL database; every statement commits at once (autocommit).

    Args:
        url: libpq URL, e.g. postgresql://user@host/db or postgresql:///db?host=/run/postgresql.
        readonly: read-only transactions, no schema creation or migration.
    """

    def __init__(self, url: str, readonly: bool = False, here: Here | None = None):
        try:
            import psycopg
        except ImportError:
            raise StoreError("a postgresql:// store needs psycopg 3: pip install 'vfio-conform[postgres]'"
                             ) from None
        #: `url` as shown in messages and tables (password masked); the real one only connects.
        self.url, self.readonly, self.here = _safe_url(url), readonly, here or Here()
        self.dsn = url
        self._errors = psycopg.Error
        kwargs = {} if "connect_timeout" in url else {"connect_timeout": CONNECT_TIMEOUT_S}
        if readonly:
            kwargs["options"] = "-c default_transaction_read_only=on"
        try:
            self.db = psycopg.connect(url, autocommit=True, **kwargs)
            if not readonly:
                with self.db.transaction():
                    self.db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                    for stmt in _SCHEMA:
                        self.db.execute(stmt)
        except psycopg.Error as exc:
            raise StoreError(_explain(_safe_url(url), exc)) from None
        if not readonly:
            self.reap()

    def has_table(self, name: str) -> bool:
        return self._execute("SELECT to_regclass(?)", (name,)).fetchone()[0] is not None

    def _execute(self, sql: str, args: tuple = ()):
        try:
            return self.db.execute(sql.replace("?", "%s"), args)
        except self._errors as exc:
            raise StoreError(_explain(_safe_url(self.url), exc)) from None

    def _insert(self, table: str, row: dict) -> int:
        cur = self._execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES "
                            f"({', '.join(['?'] * len(row))}) RETURNING id", tuple(row.values()))
        return int(cur.fetchone()[0])

    def _text(self, value: str) -> str:
        return value.replace("\x00", "\\0")   # PostgreSQL TEXT cannot hold NUL


def _explain(url: str, exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[0] if lines else type(exc).__name__
    low = str(exc).lower()
    if "does not exist" in low and "relation" in low:
        what = "is not a vfio-conform result store (no runs table)"
    elif "connection" in low or "timeout" in low or "could not" in low or "server" in low:
        what = f"server unreachable ({text})"
    else:
        what = text
    return f"result store {url}: {what}"


def _safe_url(url: str) -> str:
    """The URL without a password (every form: user:pw@, :pw@, ?password=, percent-encoded)."""
    from .redact import mask_password
    return mask_password(url)
