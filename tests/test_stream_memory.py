"""Streams of any size in bounded memory: spilled saves, edits applied while streaming, bounded
hostile write plans, the spill directory's option and clean-up, and a 1 GiB generated state's run
whose peak RSS stays within 64 MiB of the same run on a 1 MiB state."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.suite_runner import ROOT, write_profile
from vfio_conform.device.digest import ALGORITHM, new_digest
from vfio_conform.suitelib.spill import InMemory, Mutated, SavedStream, SpillDir, cut, extended, flipped
from vfio_conform.suitelib.writeplan import BULK, bounded, combined, whole


def _saved(tmp_path, data: bytes) -> SavedStream:
    path = tmp_path / "s.bin"
    path.write_bytes(data)
    return SavedStream(str(path), len(data), "", (), open(path, "r+b", buffering=0))


def _bytes_of(stream, step: int) -> bytes:
    return b"".join(stream.read(o, step) for o in range(0, stream.length, step))


def test_edits_read_like_the_edited_bytes(tmp_path):
    rng = random.Random(5)
    data = bytes(rng.randrange(256) for _ in range(10_000))
    base = _saved(tmp_path, data)
    cases = [
        (flipped(base, 0), bytes([data[0] ^ 0xFF]) + data[1:]),
        (flipped(base, 9999, 0x0F), data[:9999] + bytes([data[9999] ^ 0x0F])),
        (cut(base, 4321), data[:4321]),
        (extended(base, b"\xa5" * 17), data + b"\xa5" * 17),
        (Mutated(base, flips=((5, 1), (9000, 2)), cut=9001, append=b"xy"),
         data[:5] + bytes([data[5] ^ 1]) + data[6:9000] + bytes([data[9000] ^ 2]) + b"xy"),
        (Mutated(InMemory(b"abc"), append=b"def"), b"abcdef"),
    ]
    for stream, want in cases:
        assert stream.length == len(want)
        for step in (1, 7, 4099, 1 << 20):
            assert _bytes_of(stream, step) == want, (stream.describe(), step)
    base.close()
    assert not Path(base.path).exists()


def test_saved_stream_slices_are_bounded(tmp_path):
    base = _saved(tmp_path, bytes(range(256)) * 4)
    assert base[10:20] == bytes(range(10, 20)) and len(base) == 1024
    with pytest.raises(TypeError):
        base[::2]
    base.close()
    with pytest.raises(ValueError, match="is closed"):     # a read after close says so
        base[0:1]


def test_whole_plan_for_a_small_stream_and_bounded_for_a_big_one():
    small = bounded(1000, 3, [72, 500])
    assert small.coverage.whole and small.segments == ((0, 1000, 3),)
    length = 1 << 30
    marks = [72 + k * ((1 << 20) + 12) for k in range(1024)]
    plan = bounded(length, 1, marks)
    cov = plan.coverage
    assert not cov.whole and cov.boundaries == 1024 and cov.samples == 16
    pos = 0
    for start, end, piece in plan.segments:        # contiguous, in order, covering the stream
        assert start == pos and end > start and piece in (1, BULK)
        pos = end
    assert pos == length
    small_spans = [(s, e) for s, e, p in plan.segments if p == 1]
    covered = lambda x: any(s <= x < e for s, e in small_spans)     # noqa: E731
    assert covered(0) and covered(4095) and all(covered(b) and covered(b - 1) for b in marks)
    assert cov.small_bytes < 1 << 20                        # bounded: well under a MiB of 1-byte writes
    assert "record boundaries" in cov.describe() and str(length) in cov.describe()
    assert whole(10, 4).coverage.describe().startswith("every byte")


def test_combined_plan_shares_one_resume_between_the_sizes():
    """The odd-chunk sizes share one write of a big stream: contiguous segments, the header in the
    smallest size, every record boundary in one of the small sizes, each size's share in its Coverage."""
    sizes = (1, 3, 7, 4099)
    assert combined(1000, sizes, [72]) is None                  # a small stream: each size writes it whole
    length = 1 << 30
    marks = [72 + k * ((1 << 20) + 12) for k in range(1024)]
    plan, coverage = combined(length, sizes, marks)
    pos = 0
    for start, end, piece in plan.segments:
        assert start == pos and end > start and piece in (*sizes, BULK)
        pos = end
    assert pos == length
    small = [(s, e, p) for s, e, p in plan.segments if p != BULK]
    assert small[0][:3] == (0, 4096, 1)
    for b in marks:
        assert any(s <= b - 1 and b < e for s, e, _ in small), b   # both sides of every boundary
    assert sum(c.boundaries for c in coverage.values()) >= len(marks) - 2
    assert all(c.boundaries >= 250 and c.samples == 4 for c in coverage.values())
    assert sum(e - s for s, e, _ in small) == sum(c.small_bytes for c in coverage.values()) < 32 << 20
    text = coverage[3].describe()
    assert "of the 1024 record boundaries" in text and "shared with the 1, 7, 4099-byte writes" in text


def test_digest_is_xxh3():
    assert ALGORITHM == "xxh3_128"
    d = new_digest()
    d.update(b"abc")
    assert len(d.hexdigest()) == 32


def test_spill_dir_named_by_env_and_removed(tmp_path, monkeypatch):
    monkeypatch.setenv("VFIO_CONFORM_SPILL_DIR", str(tmp_path))
    unused = SpillDir()
    unused.cleanup()
    assert list(tmp_path.iterdir()) == []                 # nothing spilled: no directory made
    d = SpillDir()
    path, f = d.new_file()
    where = Path(d.path)
    assert where.parent == tmp_path and Path(path).parent == where
    f.write(b"x")
    f.close()
    d.cleanup()
    assert not where.exists() and list(tmp_path.iterdir()) == []
    with pytest.raises(NotADirectoryError):
        SpillDir(str(tmp_path / "missing"))


def _run(profile: Path, tmp: Path, spill: Path, *areas: str) -> dict:
    """`vfio-conform run` over `areas` of the suites; the profile's entry of the JSON summary."""
    out = tmp / f"{profile.stem}.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "vfio_conform", "run", "--profile", str(profile), "--reports", str(tmp),
         "--json", str(out), "-q", "--", "--vc-spill-dir", str(spill), "-k", KEEP,
         *[str(ROOT / "suites" / a) for a in areas]],
        capture_output=True, text=True, timeout=1200, cwd=tmp, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text())["profiles"][0]


AREAS = ("data/test_stream.py", "depth/test_hostile.py", "depth/test_roundtrip.py", "consumers/test_qemu.py")
#: The tests the issue measured at 1-3 GiB on a 1 GiB state, the whole hostile module (bounded by
#: design: a few resumes of the state) and the consumers' spills; three round trips and stream tests
#: that move the same bytes again are left out.
KEEP = "not source_abort and not migrate_twice and not same_stream"


def test_gigabyte_state_runs_in_the_memory_of_a_megabyte_one(tmp_path):
    """The stream, hostile, round-trip and QEMU consumer suites on a 1 GiB generated sim state: all
    pass, peak RSS within 64 MiB of the same run on a 1 MiB state, the spill directory emptied."""
    spill = tmp_path / "spill"
    spill.mkdir()
    runs = {}
    for name, size in (("mem-1m", 1 << 20), ("mem-1g", 1 << 30)):
        profile = write_profile(tmp_path, "sim-precopy", name,
                                sim_config={"state_size": size, "generated_state": True},
                                timeouts={"test": 600, "io": 60})
        runs[name] = _run(profile, tmp_path, spill, *AREAS)
        assert runs[name]["verdict"] == "CONFORMANT-SUBSET"      # the stream areas only, by design
        assert list(spill.iterdir()) == [], "the spill directory was not cleaned"
    small, big = runs["mem-1m"]["performance"], runs["mem-1g"]["performance"]
    assert big["stream_bytes"] > 8 << 30 and big["stream_mib_s"] > 0
    assert big["peak_rss_mib"] - small["peak_rss_mib"] <= 64, (small, big)


BIG = {"state_size": 24 << 20, "generated_state": True}     # above the 1 MiB whole-plan budget


@pytest.mark.parametrize("knob, area, test, rule", [
    ("resume_small_writes_lost", "depth/test_hostile.py", "test_odd_chunk_sizes_resume",
     "resume.segmentation-free"),
    ("accept_extra_bytes", "depth/test_hostile.py", "test_extra_bytes", "resume.hostile-stream-refused"),
    ("corrupt_stream", "data/test_stream.py", "test_stream_does_not_depend_on_read_size",
     "stream.segmentation-free"),
])
def test_bounded_checks_catch_faults_on_a_big_state(tmp_path, knob, area, test, rule):
    """With the bounded plans (a 24 MiB generated state), each knob is still caught naming its rule,
    and the clean device passes the same tests; the record says what the small writes covered."""
    from tests.suite_runner import run_suites
    clean = write_profile(tmp_path, "sim-precopy", "big-clean", sim_config=BIG)
    code, rows, out = run_suites(clean, tmp_path, "-k", test, areas=(area,))
    assert code == 0 and rows and all(r["outcome"] == "pass" for r in rows), out[-2000:]
    broken = write_profile(tmp_path, "sim-precopy", f"big-{knob.replace('_', '-')}",
                           faults=[{"name": knob}], sim_config=BIG)
    code, rows, out = run_suites(broken, tmp_path, "-k", test, areas=(area,))
    failed = [r for r in rows if r["outcome"] == "fail" and r["rule"] == rule]
    assert code != 0 and failed, out[-2000:]
    if knob != "accept_extra_bytes":
        assert any("record boundaries" in r["message"] or "body samples" in r["message"]
                   for r in failed), [r["message"] for r in failed]
