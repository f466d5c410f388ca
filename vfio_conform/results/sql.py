"""Backend-neutral result store logic; subclasses supply the connection, DDL and id retrieval."""
from __future__ import annotations

import dataclasses
import time

from .model import RunMeta, TestRecord

#: Columns of `runs` added after the first schema: (name, SQL type); old stores get them by ALTER.
ADDED_RUN_COLUMNS = (("profile_hash", "TEXT"), ("firmware", "TEXT"))
RUN_COLUMNS = ("session", "profile", "backend", "devices", "driver", "kernel", "harness_version",
               "host", "argv", "started", "profile_hash", "firmware")
RESULT_COLUMNS = ("run_id", "nodeid", "test_id", "outcome", "duration", "message", "rule", "link",
                  "recorded")


class SqlStore:
    """Append-only store of runs and test results; SQL is written with '?' placeholders."""

    url: str = ""

    # -- backend hooks -------------------------------------------------------------------------
    def _execute(self, sql: str, args: tuple = ()):
        """Run one statement (autocommit) and return its cursor."""
        raise NotImplementedError

    def _insert(self, table: str, row: dict) -> int:
        """Insert one row and return its new id."""
        raise NotImplementedError

    def _text(self, value: str) -> str:
        """Make a string storable (backends may refuse some characters)."""
        return value

    # -- public API ----------------------------------------------------------------------------
    def begin_run(self, meta: RunMeta) -> int:
        row = dataclasses.asdict(meta)
        row["started"] = row["started"] or time.time()
        return self._insert("runs", {k: row[k] for k in RUN_COLUMNS})

    def record(self, run_id: int, rec: TestRecord) -> None:
        self._execute(
            f"INSERT INTO results ({', '.join(RESULT_COLUMNS)}) VALUES ({_marks(len(RESULT_COLUMNS))})",
            (run_id, rec.nodeid, rec.test_id, rec.outcome.value, rec.duration,
             self._text(rec.message[:4000]), rec.rule, rec.link, time.time()))

    def end_run(self, run_id: int, status: str) -> None:
        self._execute("UPDATE runs SET ended = ?, status = ? WHERE id = ?", (time.time(), status, run_id))

    def run(self, run_id: int) -> dict | None:
        """One run's metadata row, or None."""
        return next(iter(self._rows("SELECT * FROM runs WHERE id = ?", (run_id,))), None)

    def runs(self, limit: int = 20, profile: str | None = None) -> list[dict]:
        sql = "SELECT * FROM runs" + (" WHERE profile = ?" if profile else "") + " ORDER BY id DESC LIMIT ?"
        return self._rows(sql, (profile, limit) if profile else (limit,))

    def session_runs(self, session: str) -> list[dict]:
        """Every run (one per profile) of one harness session, oldest first."""
        return self._rows("SELECT * FROM runs WHERE session = ? ORDER BY id", (session,))

    def summary(self, run_id: int) -> dict[str, int]:
        cur = self._execute("SELECT outcome, COUNT(*) FROM results WHERE run_id = ? GROUP BY outcome",
                            (run_id,))
        return {k: int(v) for k, v in cur.fetchall()}

    def results(self, run_id: int) -> list[dict]:
        return self._rows("SELECT * FROM results WHERE run_id = ? ORDER BY id", (run_id,))

    def import_from(self, other) -> list[int]:
        """Copy every run (and its results) of another store (path or URL) into this one; new run ids."""
        from .open import open_store
        src = open_store(other)
        new_ids = []
        try:
            for run in reversed(src.runs(limit=1_000_000)):
                old = run.pop("id")
                new_id = self._insert("runs", run)
                for res in src.results(old):
                    res.pop("id")
                    res["run_id"] = new_id
                    self._execute(f"INSERT INTO results ({', '.join(res)}) VALUES ({_marks(len(res))})",
                                  tuple(res.values()))
                from .waivers import load_waivers, record_waivers
                record_waivers(self, new_id, load_waivers(src, old))
                new_ids.append(new_id)
        finally:
            src.close()
        return new_ids

    def close(self) -> None:
        self.db.close()

    def _rows(self, sql: str, args: tuple = ()) -> list[dict]:
        cur = self._execute(sql, args)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    @staticmethod
    def _row(cur, row) -> dict:
        return {d[0]: v for d, v in zip(cur.description, row)}


def _marks(n: int) -> str:
    return ", ".join("?" * n)
