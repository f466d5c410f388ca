"""Backend-neutral result store logic; subclasses supply the connection, DDL and id retrieval."""
from __future__ import annotations

import dataclasses
import time

from ..base.errors import VfioConformError
from .legacy import fill
from .liveness import Here, judge
from .environment import Environment, of_run
from .model import Reason, RunMeta, RunStatus, TestRecord
from .waivers import load_waivers, record_waivers

#: Columns of `runs` added after the first schema: (name, SQL type); old stores get them by ALTER.
ADDED_RUN_COLUMNS = (("profile_hash", "TEXT"), ("firmware", "TEXT"), ("reason", "TEXT"),
                     ("pid", "INTEGER"), ("boot_id", "TEXT"), ("environment", "TEXT"),
                     ("outputs", "TEXT"), ("kernel_package", "TEXT"), ("kernel_config", "TEXT"),
                     ("selected_tests", "INTEGER"), ("suite_tests", "INTEGER"), ("harness_build", "TEXT"))
RUN_COLUMNS = ("session", "profile", "backend", "devices", "driver", "kernel", "harness_version",
               "host", "argv", "started", "profile_hash", "firmware", "pid", "boot_id", "outputs",
               "harness_build")
#: Columns of `results` added after the first schema (the TestRecord's fields beyond the first seven);
#: old stores get them by ALTER, and their old rows read as legacy.fill says.
ADDED_RESULT_COLUMNS = (("rules", "TEXT"), ("arc_from", "TEXT"), ("arc_to", "TEXT"), ("should", "TEXT"),
                        ("devices", "TEXT"), ("waiver_index", "INTEGER"), ("waiver_reason", "TEXT"),
                        ("hazard", "TEXT"), ("test_key", "TEXT"), ("arc_expect", "TEXT"))
RESULT_COLUMNS = ("run_id", "nodeid", "test_id", "outcome", "duration", "message", "rule", "link",
                  "recorded", *(n for n, _ in ADDED_RESULT_COLUMNS))


class StoreError(VfioConformError):
    """The result store cannot be opened, read or written; one line naming the store and the cause
    (a password in it is masked, whatever the message's source)."""

    def __init__(self, message: str = "", *args):
        from .redact import mask_password
        super().__init__(mask_password(str(message)), *args)


class SqlStore:
    """Append-only store of runs and test results; SQL is written with '?' placeholders.

    A store opened `readonly` never writes: no schema creation or migration, no journal switch,
    and dead runs are only *shown* incomplete (see liveness.judge). A writable store marks this
    host's dead `running` runs incomplete when it opens.
    """

    url: str = ""
    readonly: bool = False
    here: Here

    # -- backend hooks -------------------------------------------------------------------------
    def _execute(self, sql: str, args: tuple = ()):
        """Run one statement (autocommit) and return its cursor; raises StoreError."""
        raise NotImplementedError

    def _insert(self, table: str, row: dict) -> int:
        """Insert one row and return its new id; raises StoreError."""
        raise NotImplementedError

    def _text(self, value: str) -> str:
        """Make a string storable (backends may refuse some characters)."""
        return value

    # -- public API ----------------------------------------------------------------------------
    def begin_run(self, meta: RunMeta) -> int:
        row = dataclasses.asdict(meta)
        row["started"] = row["started"] or time.time()
        return self._insert("runs", {k: row[k] for k in RUN_COLUMNS})

    def set_environment(self, run_id: int, env: Environment) -> None:
        """Store what the run ran on (JSON of the Environment; firmware also in its own column)."""
        self._execute("UPDATE runs SET environment = ?, firmware = ? WHERE id = ?",
                      (self._text(env.to_json()), self._text(env.firmware), run_id))

    def set_kernel(self, run_id: int, package: str, config_hash: str) -> None:
        """Key a lab run by its kernel: the Debian package version and the config's hash (the
        release is the run's `kernel`, uname -r)."""
        self._execute("UPDATE runs SET kernel_package = ?, kernel_config = ? WHERE id = ?",
                      (package, config_hash, run_id))

    def environment(self, run_id: int) -> Environment | None:
        """The run's environment (None for a run stored before environments were captured)."""
        return of_run(self.run(run_id))

    def record(self, run_id: int, rec: TestRecord) -> None:
        self._execute(
            f"INSERT INTO results ({', '.join(RESULT_COLUMNS)}) VALUES ({_marks(len(RESULT_COLUMNS))})",
            (run_id, rec.nodeid, rec.test_id, rec.outcome.value, rec.duration,
             self._text(rec.message[:4000]), rec.rule, rec.link, time.time(),
             " ".join(rec.rules), rec.arc_from, rec.arc_to, " ".join(rec.should), ",".join(rec.devices),
             rec.waiver_index, self._text(rec.waiver_reason), rec.hazard, rec.test_key, rec.arc_expect))

    def set_selection(self, run_id: int, selected: int, total: int | None) -> None:
        """How many tests of the profile's suite the run selected, of how many (None: not counted);
        selected < total (or an unknown total) makes the run a subset."""
        self._execute("UPDATE runs SET selected_tests = ?, suite_tests = ? WHERE id = ?",
                      (int(selected), None if total is None else int(total), run_id))

    def end_run(self, run_id: int, status: str, reason: str = "") -> None:
        """End a run `finished`, or `incomplete` with a Reason (a bare reason such as 'crashed'
        given as the status means incomplete for that reason)."""
        status, reason = _normal(status, reason)
        self._execute("UPDATE runs SET ended = ?, status = ?, reason = ? WHERE id = ?",
                      (time.time(), status, reason or None, run_id))

    def run(self, run_id: int) -> dict | None:
        """One run's metadata row (status as judged now), or None (also for an id no store can
        hold: ids are 64-bit signed integers in SQLite and PostgreSQL)."""
        if not 0 < int(run_id) < 2 ** 63:
            return None
        return next(iter(self._runs("SELECT * FROM runs WHERE id = ?", (run_id,))), None)

    def runs(self, limit: int = 20, profile: str | None = None, host: str | None = None) -> list[dict]:
        where, args = [], []
        for col, val in (("profile", profile), ("host", host)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        sql = ("SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY id DESC LIMIT ?")
        return self._runs(sql, (*args, limit))

    def session_runs(self, session: str) -> list[dict]:
        """Every run (one per profile) of one harness session, oldest first."""
        return self._runs("SELECT * FROM runs WHERE session = ? ORDER BY id", (session,))

    def summary(self, run_id: int) -> dict[str, int]:
        cur = self._execute("SELECT outcome, COUNT(*) FROM results WHERE run_id = ? GROUP BY outcome",
                            (run_id,))
        return {k: int(v) for k, v in cur.fetchall()}

    def results(self, run_id: int) -> list[dict]:
        """One run's result rows, each with every record column (old rows filled, see legacy)."""
        return [fill(r) for r in self._rows("SELECT * FROM results WHERE run_id = ? ORDER BY id", (run_id,))]

    def reap(self) -> list[int]:
        """Mark this host's dead `running` runs incomplete (with the reason); returns their ids."""
        done = []
        for row in self._rows("SELECT * FROM runs WHERE status = ? AND host = ?",
                              (RunStatus.RUNNING.value, self.here.host)):
            status, reason = judge(row, self.here)
            if status != RunStatus.RUNNING.value:
                last = self._execute("SELECT MAX(recorded) FROM results WHERE run_id = ?",
                                     (row["id"],)).fetchone()[0]
                self._execute("UPDATE runs SET status = ?, reason = ?, ended = ? "
                              "WHERE id = ? AND status = ?",
                              (status, reason, last or row["started"], row["id"],
                               RunStatus.RUNNING.value))
                done.append(int(row["id"]))
        return done

    def import_from(self, src: "SqlStore") -> list[int]:
        """Copy every run (its results and waivers) of another open store into this one; new run ids.

        `open.import_runs(dest, location)` opens the source read-only and closes it after."""
        new_ids = []
        for run in reversed(src.runs(limit=1_000_000)):
            old = run.pop("id")
            new_id = self._insert("runs", run)
            for res in src.results(old):
                res.pop("id")
                res["run_id"] = new_id
                self._execute(f"INSERT INTO results ({', '.join(res)}) VALUES ({_marks(len(res))})",
                              tuple(res.values()))
            record_waivers(self, new_id, load_waivers(src, old))
            new_ids.append(new_id)
        return new_ids

    def has_table(self, name: str) -> bool:
        """Whether the store has table `name` (SQLite; the PostgreSQL store answers its own way)."""
        return bool(self._execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                  (name,)).fetchone())

    def close(self) -> None:
        try:
            self.db.close()
        except Exception:   # closing a connection whose server or disk is gone: nothing to keep
            pass

    def _runs(self, sql: str, args: tuple) -> list[dict]:
        rows = self._rows(sql, args)
        for row in rows:
            row["status"], row["reason"] = judge(row, self.here)
        return rows

    def _rows(self, sql: str, args: tuple = ()) -> list[dict]:
        cur = self._execute(sql, args)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    @staticmethod
    def _row(cur, row) -> dict:
        return {d[0]: v for d, v in zip(cur.description, row)}


def _normal(status: str, reason: str) -> tuple[str, str]:
    status = str(getattr(status, "value", status))
    reason = str(getattr(reason, "value", reason or ""))
    if status in {r.value for r in Reason}:
        return RunStatus.INCOMPLETE.value, status
    if status not in {s.value for s in RunStatus}:
        raise ValueError(f"unknown run status {status!r}")
    return status, reason


def _marks(n: int) -> str:
    return ", ".join("?" * n)
