"""A throwaway PostgreSQL server for the store tests (fixture `pg_server`, registered in conftest)."""
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))


def _as_owner() -> list[str]:
    """initdb refuses root: run the server as 'postgres' (or 'nobody') when we are root."""
    if os.geteuid() != 0:
        return []
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
            return ["runuser", "-u", user, "--"]
        except KeyError:
            continue
    pytest.skip("running as root and no 'postgres'/'nobody' user to own the cluster")


@pytest.fixture(scope="session")
def pg_server():
    """Yields a function db(name) -> URL of a fresh database on a private server (one per worker)."""
    psycopg = pytest.importorskip("psycopg", reason="pip install 'vfio-conform[postgres]'")
    if not PG_BIN:
        if os.environ.get("VC_REQUIRE_REPORT_DEPS"):
            pytest.fail("postgresql not installed (scripts/install-report-deps.sh)")
        pytest.skip("postgresql not installed (scripts/install-report-deps.sh)")
    bindir = Path(PG_BIN[-1]).parent
    base = Path(tempfile.mkdtemp(prefix="vc-pg-"))
    prefix = _as_owner()
    if prefix:
        user = prefix[2]
        uid, gid = pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid
        os.chown(base, uid, gid)
    os.chmod(base, 0o755)
    data = base / "data"
    run = lambda *cmd: subprocess.run([*prefix, *cmd], check=True, capture_output=True, text=True,  # noqa: E731
                                      timeout=120, cwd=base)
    run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
        "--no-sync")
    opts = f"-k {base} -c listen_addresses='' -c fsync=off -c full_page_writes=off"
    start = lambda: run(str(bindir / "pg_ctl"), "-D", str(data), "-o", opts,  # noqa: E731
                        "-l", str(base / "log"), "-w", "start")
    start()
    admin = f"postgresql://postgres@/postgres?host={base}"
    made = []

    def db(name: str) -> str:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return f"postgresql://postgres@/{name}?host={base}"
    # For tests of a server that goes away: stop it at once, and start it again (same data).
    db.stop = lambda: run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    db.start = start
    try:
        yield db
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)
