"""Faults outside the tests and output paths of every kind: each gives the status, exit code, message
and files docs/run-lifecycle.md promises (its fault table is this test's output: VC_UPDATE_DOCS=1
rewrites it; the test fails when the documented behaviour drifts from the code's).

A signal at each phase (collection, tests, each report writer), a plugin raising in each pytest
hook, a plugin that does not exist, a full reports disk, a store on read-only media read by
`diff`, a store URL of another kind, and each kind of output path (regular file, directory,
missing directory, FIFO with and without a reader, character device, symlink to a device and to
a file). The full store disk and a PostgreSQL server stopped mid-run are in
test_bad_store_input.py and test_run_killed.py.
"""
from __future__ import annotations

import os
import re
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from run_cli import ROOT, sqlite_rows, vc

DOC = ROOT / "docs" / "run-lifecycle.md"
BEGIN, END = "<!-- fault-table:begin -->", "<!-- fault-table:end -->"
SELECT = ("--", "-k", "test_arc and RUNNING")
#: Files of a run directory the table lists (the crash file's random part as *).
RUN_FILES = ("junit.xml", "summary.json", "report.html", "allure-results", "vfio-conform-crash-*.txt")


def _root() -> bool:
    return os.geteuid() == 0


def _mount_tmpfs(where: Path, size: str) -> None:
    where.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if proc.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")


def _fill(where: Path) -> None:
    try:
        with open(where / "filler", "wb") as f:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
    except OSError:
        pass


def _fifo_reader(path: Path, got: list) -> threading.Thread:
    def read():
        with open(path, "rb") as f:         # blocks until the writer opens it
            got.append(f.read())
    t = threading.Thread(target=read, daemon=True)
    t.start()
    return t


# Each case: (fault, setup(tmp) -> (extra args, env, after(tmp, proc) or None)).
def _signal(phase):
    return lambda tmp: (["--ktap", tmp / "run.ktap"], {"VC_SIGTERM_AT": phase}, None)


def _raise(hook):
    return lambda tmp: ([], {"VC_RAISE_HOOK": hook}, None)


def _no_plugin(tmp):
    return [], {}, None


def _reports_full(tmp):
    if not _root():
        pytest.skip("needs root to mount a small tmpfs")
    _mount_tmpfs(tmp / "mnt", "256k")
    (tmp / "mnt" / "r").mkdir()
    _fill(tmp / "mnt")
    return ["--reports", tmp / "mnt" / "r"], {}, None


def _device(path: str):
    def setup(tmp):
        before = os.stat(path)

        def after(tmp, proc):
            now = os.stat(path)
            assert stat.S_ISCHR(now.st_mode) and now.st_rdev == before.st_rdev, f"{path} was replaced"
        return ["--json", path], {}, after
    return setup


def _symlink_to_device(tmp):
    link = tmp / "to-null.json"
    link.symlink_to("/dev/null")

    def after(tmp, proc):
        assert link.is_symlink() and os.readlink(link) == "/dev/null"
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    return ["--json", link], {}, after


def _symlink_to_file(tmp):
    (tmp / "real.json").write_text("old\n")
    link = tmp / "link.json"
    link.symlink_to("real.json")

    def after(tmp, proc):
        assert link.is_symlink() and os.readlink(link) == "real.json"
        assert '"schema"' in (tmp / "real.json").read_text()
        assert not [p for p in tmp.iterdir() if p.name.endswith(".tmp")]
    return ["--json", link], {}, after


def _regular_file(tmp):
    (tmp / "s.json").write_text("old\n")
    os.chmod(tmp / "s.json", 0o640)

    def after(tmp, proc):
        assert '"schema"' in (tmp / "s.json").read_text()
        assert stat.S_IMODE(os.stat(tmp / "s.json").st_mode) == 0o640
    return ["--json", tmp / "s.json"], {}, after


def _fifo(reader: bool):
    def setup(tmp):
        os.mkfifo(tmp / "out.fifo")
        got: list = []
        thread = _fifo_reader(tmp / "out.fifo", got) if reader else None

        def after(tmp, proc):
            assert stat.S_ISFIFO(os.stat(tmp / "out.fifo").st_mode), "the FIFO was replaced"
            if thread is not None:
                thread.join(30)
                assert got and got[0].startswith(b"KTAP version 1"), got
        return ["--ktap", tmp / "out.fifo"], {}, after
    return setup


def _json_dir(tmp):
    (tmp / "adir").mkdir()
    return ["--json", tmp / "adir"], {}, None


def _json_no_parent(tmp):
    return ["--json", tmp / "nodir" / "s.json"], {}, None


def _reports_file(tmp):
    (tmp / "afile").write_text("x")
    return ["--reports", tmp / "afile" / "r"], {}, None


def _under_file(flag):
    def setup(tmp):
        (tmp / "afile").write_text("keep\n")

        def after(tmp, proc):
            assert (tmp / "afile").read_text() == "keep\n"
        return [flag, tmp / "afile" / "out"], {}, after
    return setup


def _reports_ro(tmp):
    if not _root():
        pytest.skip("needs root to mount a read-only tmpfs")
    _mount_tmpfs(tmp / "mnt", "1m")
    subprocess.run(["mount", "-o", "remount,ro", str(tmp / "mnt")], check=True)
    return ["--reports", tmp / "mnt" / "r", "--store", tmp / "r.sqlite"], {}, None


def _allure_file(tmp):
    (tmp / "afile").write_text("keep\n")

    def after(tmp, proc):
        assert (tmp / "afile").read_text() == "keep\n"
    return [], {"VFIO_CONFORM_ALLURE_DIR": str(tmp / "afile")}, after


def _ktap_stdout(tmp):
    link = tmp / "out.ktap"
    link.symlink_to("/proc/self/fd/1")

    def after(tmp, proc):
        assert link.is_symlink() and os.readlink(link) == "/proc/self/fd/1"
        assert "KTAP version 1" in proc.stdout
    return ["--ktap", link], {}, after


def _store_mysql(tmp):
    def after(tmp, proc):
        assert "s3cret" not in proc.stdout + proc.stderr
        assert not any("mysql" in p.name for p in tmp.rglob("*")) and not Path(ROOT / "mysql:").exists()
    return ["--store", "mysql://u:s3cret@db/vc"], {}, after


CASES = {
    "sigterm-collection": ("SIGTERM once the tests are collected", _signal("collection")),
    "sigterm-tests": ("SIGTERM during the second test", _signal("tests")),
    "sigterm-junit": ("SIGTERM while the JUnit XML is written", _signal("JUnit XML")),
    "sigterm-ktap": ("SIGTERM while the KTAP file is written", _signal("KTAP output")),
    "sigterm-allure": ("SIGTERM while the Allure results are written", _signal("Allure results")),
    "sigterm-json": ("SIGTERM while the JSON summary is written", _signal("JSON summary")),
    "sigterm-html": ("SIGTERM while the HTML report is written", _signal("HTML report")),
    "raise-sessionstart": ("a plugin raises in `pytest_sessionstart`", _raise("sessionstart")),
    "raise-collection": ("a plugin raises in `pytest_collection_finish`", _raise("collection_finish")),
    "raise-sessionfinish": ("a plugin raises in `pytest_sessionfinish`", _raise("sessionfinish")),
    "raise-terminal-summary": ("a plugin raises in `pytest_terminal_summary`", _raise("terminal_summary")),
    "raise-unconfigure": ("a plugin raises in `pytest_unconfigure`", _raise("unconfigure")),
    "no-such-plugin": ("`-- -p no_such_plugin`", _no_plugin),
    "reports-full": ("the reports disk is full (a full 256 KB tmpfs)", _reports_full),
    "json-file": ("`--json` is an existing regular file (mode 0640)", _regular_file),
    "json-dev-null": ("`--json /dev/null` (a character device)", _device("/dev/null")),
    "json-dev-full": ("`--json /dev/full` (every write fails: ENOSPC)", _device("/dev/full")),
    "json-symlink-device": ("`--json` is a symlink to /dev/null", _symlink_to_device),
    "json-symlink-file": ("`--json` is a symlink to a regular file", _symlink_to_file),
    "ktap-fifo": ("`--ktap` is a FIFO with a reader", _fifo(True)),
    "ktap-fifo-no-reader": ("`--ktap` is a FIFO nobody reads", _fifo(False)),
    "ktap-symlink-stdout": ("`--ktap` is a symlink to /proc/self/fd/1 (stdout, a pipe here)", _ktap_stdout),
    "json-directory": ("`--json` is a directory", _json_dir),
    "json-missing-dir": ("`--json` in a directory that does not exist", _json_no_parent),
    "reports-under-file": ("`--reports` below a regular file", _reports_file),
    "json-under-file": ("`--json` below a regular file", _under_file("--json")),
    "ktap-under-file": ("`--ktap` below a regular file", _under_file("--ktap")),
    "reports-read-only": ("`--reports` on read-only media", _reports_ro),
    "allure-dir-is-file": ("the Allure directory (`$VFIO_CONFORM_ALLURE_DIR`) is a regular file", _allure_file),
    "store-other-scheme": ("`--store mysql://u:s3cret@db/vc`", _store_mysql),
}


def _norm(text: str, tmp: Path) -> str:
    text = text.replace(str(tmp), "TMP")
    text = re.sub(r"runs/\d{8}-\d{6}-[\w.-]+?-\d+", "runs/RUN", text)
    text = re.sub(r"vfio-conform-crash-[\w]+\.txt", "vfio-conform-crash-*.txt", text)
    text = re.sub(r"\.py:\d+ in ", ".py:N in ", text)      # line numbers (pytest's change between versions)
    return re.sub(r"\s+", " ", text).strip()


def run_case(case: str, tmp: Path) -> dict:
    fault, setup = CASES[case]
    args, extra_env, after = setup(tmp)
    reports, store = tmp / "r", tmp / "r" / "results.sqlite"
    words = [str(a) for a in args]
    base = ["run", "--profile", "sim-p2p", "-q", "-p", "vc_faults"]
    if "--reports" not in words:
        base += ["--reports", reports]
    else:
        reports = Path(words[words.index("--reports") + 1])
    if "--store" not in words:
        base += ["--store", store]
    elif words[words.index("--store") + 1].endswith(".sqlite"):
        store = Path(words[words.index("--store") + 1])
    tail = [*SELECT, "-p", "no_such_plugin"] if case == "no-such-plugin" else list(SELECT)
    proc = vc(*base, *args, *tail, **extra_env)
    out = proc.stdout + proc.stderr
    # a pytest INTERNALERROR keeps pytest's own INTERNALERROR> block on stdout; never a bare traceback
    assert "Traceback" not in proc.stderr and not [
        ln for ln in proc.stdout.splitlines() if "Traceback" in ln and not ln.startswith("INTERNALERROR>")
    ], out[-3000:]
    err = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(err) <= 1, proc.stderr[-3000:]
    runs = sqlite_rows(store, "SELECT status, reason FROM runs") if store.exists() else []
    status = ", ".join(f"{r['status']}" + (f" ({r['reason']})" if r["reason"] else "") for r in runs) or "no run"
    says = err[0] if err else next((ln for ln in proc.stdout.splitlines() if ln.startswith("sim-p2p: run #")), "")
    run_dirs = sorted((reports / "runs").glob("*")) if (reports / "runs").is_dir() else []
    files = set()
    for d in run_dirs:
        for p in d.iterdir():
            files.add("vfio-conform-crash-*.txt" if p.name.startswith("vfio-conform-crash-") else p.name)
    if after is not None:
        after(tmp, proc)
    return {"case": case, "fault": fault, "status": status, "exit": proc.returncode,
            "says": _norm(says, tmp), "files": ", ".join(f for f in RUN_FILES if f in files) or "none"}


def doc_rows() -> dict[str, dict]:
    table = DOC.read_text().partition(BEGIN)[2].partition(END)[0].strip().splitlines()[2:]
    rows = {}
    for line in table:
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        case, fault, status, code, says, files = cells
        rows[case] = {"case": case, "fault": fault, "status": status, "exit": int(code),
                      "says": says.strip("`").replace("\\|", "|"), "files": files}
    return rows


def _line(row: dict) -> str:
    says = row["says"].replace("|", "\\|")
    return (f"| {row['case']} | {row['fault']} | {row['status']} | {row['exit']} | `{says}` | "
            f"{row['files']} |")


def test_every_case_has_a_row():
    assert list(doc_rows()) == list(CASES)


@pytest.mark.parametrize("case", list(CASES))
def test_fault_as_documented(case, tmp_path):
    mounts = []
    try:
        got = run_case(case, tmp_path)
    finally:
        for m in (tmp_path / "mnt",):
            if m.is_mount():
                mounts.append(m)
                subprocess.run(["umount", "-l", str(m)], capture_output=True)
    if os.environ.get("VC_UPDATE_DOCS"):
        _update(got)
    assert got == doc_rows()[case], (f"docs/run-lifecycle.md: rerun with VC_UPDATE_DOCS=1 if this is "
                                     f"the intended behaviour:\n{_line(got)}")


def _update(row: dict) -> None:
    """Rewrite this case's row of the table (one case at a time: works under xdist too)."""
    import fcntl
    with open(DOC, "r+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        text = f.read()
        head, _, rest = text.partition(BEGIN)
        body, _, tail = rest.partition(END)
        lines = body.strip().splitlines() or ["| case | fault | status in the store | exit | message | "
                                              "files in the run directory |", "|---|---|---|---|---|---|"]
        rows = {ln.split(" | ")[0].strip("| "): ln for ln in lines[2:]}
        rows[row["case"]] = _line(row)
        ordered = [rows[c] for c in CASES if c in rows]
        text = f"{head}{BEGIN}\n" + "\n".join(lines[:2] + ordered) + f"\n{END}{tail}"
        f.seek(0)
        f.write(text)
        f.truncate()
