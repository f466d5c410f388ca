"""`export` rebuilds a stored run's CI files (equal to the run's own for a finished run); store
locations of another kind are refused with nothing created; passwords never reach a message; a
store mirror never overwrites another store's runs; readers never write beside the store; the
plugin's SIGTERM handler does not outlive pytest."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from run_cli import ROOT, env, sqlite_rows, vc
from vfio_conform.results import StoreError, open_store
from vfio_conform.results.redact import mask_password

SELECT = ("--", "-k", "test_arc and RUNNING")


def _run_dir(reports: Path) -> Path:
    (run_dir,) = (reports / "runs").iterdir()
    return run_dir


def _allure(folder: Path) -> list[tuple]:
    """The Allure results without what differs by nature (uuids, times)."""
    out = []
    for path in folder.glob("*-result.json"):
        data = json.loads(path.read_text())
        out.append((data["name"], data["status"], data["historyId"], data["testCaseId"],
                    json.dumps(data["labels"]), json.dumps(data.get("parameters", [])),
                    json.dumps(data.get("links", [])),
                    json.dumps(data.get("statusDetails", {}).get("message"))))
    return sorted(out)


def test_export_of_a_finished_run_equals_its_own_files(tmp_path):
    reports, store = tmp_path / "r", tmp_path / "r" / "results.sqlite"
    proc = vc("run", "--profile", "sim-p2p", "-q", "--reports", reports, "--ktap", tmp_path / "run.ktap",
              *SELECT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    own = _run_dir(reports)
    out = tmp_path / "exp"
    exp = subprocess.run([sys.executable, "-m", "vfio_conform", "export", "1", "--store", str(store),
                          "--reports", str(out), "--ktap", str(tmp_path / "exp.ktap")],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env())
    assert exp.returncode == 0, exp.stderr
    got = out / "export-run-1"
    stamp = re.compile(r'timestamp="[^"]*"')
    assert stamp.sub("", (got / "junit.xml").read_text()) == stamp.sub("", (own / "junit.xml").read_text())
    assert (tmp_path / "exp.ktap").read_text() == (tmp_path / "run.ktap").read_text()
    gen = re.compile(r"generated [0-9-]+ [0-9:]+")
    assert gen.sub("", (got / "report.html").read_text()) == gen.sub("", (own / "report.html").read_text())
    a, b = (json.loads((d / "summary.json").read_text()) for d in (own, got))
    for doc in (a, b):
        doc.pop("generated")
        for prof in doc["profiles"]:
            prof.pop("reports")
    assert a == b and a["verdict"] == "CONFORMANT-SUBSET"      # SELECT is a subset of the suite
    assert _allure(got / "allure-results") == _allure(own / "allure-results")
    for name in ("environment.properties", "categories.json", "executor.json"):
        assert (got / "allure-results" / name).read_text() == (own / "allure-results" / name).read_text()
    assert not (store.parent / "export-run-1").exists()


def test_export_of_a_crashed_run(tmp_path):
    """A plugin raising in pytest_sessionfinish: the run is crashed, its files were never written;
    export writes them from the store, saying the run is incomplete."""
    reports, store = tmp_path / "r", tmp_path / "r" / "results.sqlite"
    proc = vc("run", "--profile", "sim-p2p", "-q", "-p", "vc_faults", "--reports", reports, *SELECT,
              VC_RAISE_HOOK="sessionfinish")
    assert proc.returncode == 3 and "export 1" in proc.stderr, proc.stderr
    assert not (_run_dir(reports) / "summary.json").exists()
    exp = vc("export", "1", "--store", store, "--reports", tmp_path / "exp", "--json", tmp_path / "s.json")
    assert exp.returncode == 0, exp.stderr
    doc = json.loads((tmp_path / "s.json").read_text())
    (prof,) = doc["profiles"]
    assert (prof["status"], prof["reason"], doc["verdict"]) == ("incomplete", "crashed", "INCOMPLETE")
    stored = len(sqlite_rows(store, "SELECT id FROM results"))
    assert prof["total"] == stored > 0
    junit = (tmp_path / "exp" / "export-run-1" / "junit.xml").read_text()
    assert junit.count("<testcase ") == stored


def test_export_refuses_a_bad_output_path(tmp_path):
    reports = tmp_path / "r"
    assert vc("run", "--profile", "sim-p2p", "-q", "--reports", reports, *SELECT).returncode == 0
    (tmp_path / "d").mkdir()
    exp = vc("export", "1", "--store", reports / "results.sqlite", "--json", tmp_path / "d")
    assert exp.returncode == 2 and exp.stderr.count("\n") == 1 and "is a directory" in exp.stderr, exp.stderr


@pytest.mark.parametrize("url", ["mysql://u:s3cret@db/vc", "http://u:s3cret@example.org/x", "sqlite://rel.db"])
@pytest.mark.parametrize("command", [("run", "--profile", "sim-p2p"), ("results",), ("report", "1"),
                                     ("diff", "1", "2"), ("export", "1")])
def test_a_store_of_another_kind_is_refused_and_nothing_is_created(tmp_path, url, command):
    args = [*command, "--store", url]
    if command[0] == "run":
        args += ["--reports", str(tmp_path / "r")]
    proc = subprocess.run([sys.executable, "-m", "vfio_conform", *args], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env=env())
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr
    assert "s3cret" not in proc.stdout + proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url,masked", [
    ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
    ("postgresql://:pw@h/db", "postgresql://:***@h/db"),
    ("postgresql://u:p%40ss%3Aw@h:5432/db", "postgresql://u:***@h:5432/db"),
    ("postgresql://u@h/db?password=pw&sslmode=require", "postgresql://u@h/db?password=***&sslmode=require"),
    ("postgresql:///db?host=/run&user=u&password=pw", "postgresql:///db?host=/run&user=u&password=***"),
    ("postgres://u:pw@h/db?PASSWORD=pw", "postgres://u:***@h/db?PASSWORD=***"),
    ("result store postgresql://u:pw@h/db: down", "result store postgresql://u:***@h/db: down"),
])
def test_passwords_are_masked_in_every_url_form(url, masked):
    assert mask_password(url) == masked
    assert str(StoreError(f"cannot open {url}")) == f"cannot open {masked}"


@pytest.mark.parametrize("url", ["postgresql://u:s3cret@/vc?host=/nonexistent-vc-dir",
                                 "postgresql://:s3cret@/vc?host=/nonexistent-vc-dir",
                                 "postgresql://u@/vc?host=/nonexistent-vc-dir&password=s3cret",
                                 "postgresql://u:s3%40cret@/vc?host=/nonexistent-vc-dir"])
@pytest.mark.parametrize("command", [("results", "--run", "999"), ("report", "abc"), ("diff", "1", "999"),
                                     ("run", "--profile", "sim-p2p")])
def test_no_message_names_a_password(tmp_path, url, command):
    pytest.importorskip("psycopg")
    args = [*command, "--store", url] + (["--reports", str(tmp_path / "r")] if command[0] == "run" else [])
    proc = vc(*args, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "s3cret" not in proc.stdout + proc.stderr and "s3%40cret" not in proc.stdout + proc.stderr
    assert "***" in proc.stderr, proc.stderr


def test_postgres_store_url_attribute_is_masked(pg_server):
    """The store's `url` (what messages and tables show) never holds the password; it still connects."""
    url = pg_server("vc_mask")
    url += ("&" if "?" in url else "?") + "password=s3cret"       # the test server trusts local users
    store = open_store(url)
    try:
        assert "s3cret" not in store.url and "password=***" in store.url
        assert store.runs() == []
    finally:
        store.close()


def test_mirror_refuses_a_store_holding_other_runs(tmp_path):
    a, b, mirror = tmp_path / "a.sqlite", tmp_path / "b.sqlite", tmp_path / "m.sqlite"
    first = vc("run", "--profile", "sim-p2p", "-q", "--store", a, "--store-mirror", mirror, *SELECT)
    assert first.returncode == 0, first.stderr
    again = vc("run", "--profile", "sim-p2p", "-q", "--store", a, "--store-mirror", mirror, *SELECT)
    assert again.returncode == 0, again.stderr             # the same store: its copy may be refreshed
    before = mirror.read_bytes()
    other = vc("run", "--profile", "sim-p2p", "-q", "--store", b, "--store-mirror", mirror, *SELECT)
    assert other.returncode == 2 and "holds 2 run(s) that are not in the store" in other.stderr, other.stderr
    assert len(other.stderr.splitlines()) == 1 and not b.exists()
    assert mirror.read_bytes() == before
    junk = tmp_path / "notes.txt"
    junk.write_text("keep me\n")
    refused = vc("run", "--profile", "sim-p2p", "-q", "--store", a, "--store-mirror", junk, *SELECT)
    assert refused.returncode == 2 and junk.read_text() == "keep me\n", refused.stderr
    link = tmp_path / "link.sqlite"
    link.symlink_to(mirror)
    for target in ("/dev/null", link):
        refused = vc("run", "--profile", "sim-p2p", "-q", "--store", a, "--store-mirror", target, *SELECT)
        assert refused.returncode == 2 and "is not a regular file" in refused.stderr, refused.stderr
    assert link.is_symlink() and os.path.exists("/dev/null") and not os.path.isfile("/dev/null")


def test_readers_on_read_only_media(tmp_path):
    """report/diff of a store on read-only media write into ./reports; an unwritable --html is one
    line and exit 2 before any verdict is printed."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a read-only tmpfs")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)]).returncode:
        pytest.skip("cannot mount a tmpfs")
    try:
        for _ in range(2):
            proc = vc("run", "--profile", "sim-p2p", "-q", "--reports", tmp_path / "r", "--store",
                      mnt / "r.sqlite", *SELECT)
            assert proc.returncode == 0, proc.stderr
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        work = tmp_path / "work"
        work.mkdir()

        def cli(*args):
            return subprocess.run([sys.executable, "-m", "vfio_conform", *map(str, args)], cwd=work,
                                  env=env(), capture_output=True, text=True, timeout=120)
        dif = cli("diff", "1", "2", "--store", mnt / "r.sqlite")
        assert dif.returncode == 0 and "diff: " + str(work / "reports") in dif.stdout, dif.stdout + dif.stderr
        rep = cli("report", "2", "--store", mnt / "r.sqlite")
        assert rep.returncode == 0 and str(work / "reports") in rep.stdout, rep.stderr
        bad = cli("diff", "1", "2", "--store", mnt / "r.sqlite", "--html", mnt / "d.html")
        assert bad.returncode == 2 and bad.stdout == "", bad.stdout
        assert len(bad.stderr.splitlines()) == 1 and "read-only" in bad.stderr, bad.stderr
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_sigterm_handler_does_not_outlive_pytest(tmp_path):
    code = (
        "import signal, sys, pytest\n"
        "from vfio_conform.base.constants import SUITES_DIR, SUITES_INI, SUITES_ROOT\n"
        "before = signal.getsignal(signal.SIGTERM)\n"
        f"rc = pytest.main([str(SUITES_DIR), '--rootdir', str(SUITES_ROOT), '-c', str(SUITES_INI),"
        f" '-p', 'no:cacheprovider', '-q', '--vc-profile', 'sim-p2p', '--vc-store', {str(tmp_path / 's.sqlite')!r},"
        " '-k', 'test_arc and RUNNING and STOP'])\n"
        "print('same' if signal.getsignal(signal.SIGTERM) is before else 'changed', rc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env=env())
    assert proc.stdout.strip().splitlines()[-1] == "same 0", proc.stdout[-2000:] + proc.stderr[-2000:]


@pytest.mark.parametrize("content", ["api_token: hunter2\nuser: bob\n", "hunter2: x\n",
                                     "root:hunter2:0:0::/root:/bin/sh\n", "- hunter2\n"])
def test_profile_check_of_another_file_echoes_none_of_it(tmp_path, content):
    path = tmp_path / "notes.yaml"
    path.write_text(content)
    for command in (("profile", "check", path), ("profiles", path)):
        proc = vc(*command)
        assert proc.returncode in (1, 2) and "hunter2" not in proc.stdout + proc.stderr, proc.stderr
        assert len(proc.stderr.splitlines()) == 1, proc.stderr
