"""The source scan behind the rule-id and waiver checks is cached by file content, never by name."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from suite_runner import ROOT
from vfio_conform.targets import sourcescan
from vfio_conform.plugin.rulecheck import unknown_ids
from vfio_conform.targets.sourcescan import ScanCache, SourceFacts, cache_file, warm_cache
from vfio_conform.targets.waivers import suite_functions

GOOD = ('from vfio_conform.suitelib.checks import expect\n\n'
        'def test_x(profile):\n    expect(True, "fsm.legal-arc", "m")\n')
TYPO = GOOD.replace("fsm.legal-arc", "fsm.legal-arcc")


@pytest.fixture
def user_cache(tmp_path, monkeypatch):
    """A user cache directory of the test's own (the shared cache follows $XDG_CACHE_HOME)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return cache_file()


def test_a_changed_file_is_scanned_again_and_its_unknown_id_caught(tmp_path, user_cache):
    suite = tmp_path / "test_s.py"
    suite.write_text(GOOD)
    assert unknown_ids([suite]) == []
    sourcescan.shared_cache().save()
    assert user_cache.exists()          # the clean content is now cached
    suite.write_text(TYPO)              # same name, new content
    assert unknown_ids([suite]) == [f"{suite}:4: unknown rule id 'fsm.legal-arcc'"]


def test_an_entry_is_used_only_for_the_content_it_was_made_from(tmp_path):
    suite = tmp_path / "test_s.py"
    suite.write_text(GOOD)
    path = tmp_path / "cache.json"
    seed = ScanCache(path)
    assert seed.facts(suite).ids == ((4, "fsm.legal-arc"),) and seed.parsed == 1
    seed.save()
    assert ScanCache(path).facts(suite).ids == ((4, "fsm.legal-arc"),)
    fresh = ScanCache(path)
    fresh.facts(suite)
    assert fresh.parsed == 0            # the same content is not parsed again
    suite.write_text(TYPO)              # the old entry (clean) must not answer for the new content
    stale = ScanCache(path)
    assert stale.facts(suite).ids == ((4, "fsm.legal-arcc"),) and stale.parsed == 1


def test_a_planted_entry_is_what_the_cache_answers_for_that_content(tmp_path):
    """The key is the sha256 of the bytes: an entry under it is trusted (so it must be the content's)."""
    import hashlib
    suite = tmp_path / "test_s.py"
    suite.write_text(GOOD)
    path = tmp_path / "cache.json"
    key = hashlib.sha256(suite.read_bytes()).hexdigest()
    path.write_text(json.dumps({"entries": {key: SourceFacts(((9, "x.planted-id"),), ()).to_json()}}))
    assert ScanCache(path).facts(suite).ids == ((9, "x.planted-id"),)


@pytest.mark.parametrize("content", ["not json {", json.dumps([1, 2]), json.dumps({"entries": [1]}),
                                     "BAD-ENTRY"])
def test_an_unreadable_or_malformed_cache_is_ignored(tmp_path, content):
    import hashlib
    suite = tmp_path / "test_s.py"
    suite.write_text(TYPO)
    path = tmp_path / "cache.json"
    if content == "BAD-ENTRY":
        key = hashlib.sha256(suite.read_bytes()).hexdigest()
        content = json.dumps({"entries": {key: {"ids": [["x"]], "tests": 3}}})
    path.write_text(content)
    cache = ScanCache(path)
    assert cache.facts(suite).ids == ((4, "fsm.legal-arcc"),) and cache.parsed == 1
    cache.save()                        # and it is replaced by a good one
    assert ScanCache(path).facts(suite).ids == ((4, "fsm.legal-arcc"),)


def test_a_cache_path_that_is_not_a_directory_is_ignored(tmp_path):
    suite = tmp_path / "test_s.py"
    suite.write_text(TYPO)
    (tmp_path / "file").write_text("")
    cache = ScanCache(tmp_path / "file" / "cache.json")      # mkdir fails: ENOTDIR
    assert cache.facts(suite).ids == ((4, "fsm.legal-arcc"),)
    cache.save()
    assert not list(tmp_path.glob(".source-scan-*"))


def test_saving_is_atomic_and_merges_with_a_concurrent_writer(tmp_path):
    a, b = tmp_path / "test_a.py", tmp_path / "test_b.py"
    a.write_text(GOOD)
    b.write_text(TYPO)
    path = tmp_path / "cache.json"
    one, two = ScanCache(path), ScanCache(path)
    one.facts(a)
    two.facts(b)
    one.save()
    two.save()                          # does not drop what `one` wrote
    again = ScanCache(path)
    again.facts(a), again.facts(b)
    assert again.parsed == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []   # no temp left


def test_warm_cache_fills_the_cache_a_run_reads(tmp_path):
    parsed = warm_cache(tmp_path)
    assert parsed > 50                  # every file of the scanned parts of the package
    assert warm_cache(tmp_path) == 0    # all there now
    assert cache_file(tmp_path).parent == tmp_path / "source-scan"


def test_suite_functions_follow_the_content(tmp_path, user_cache):
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "test_a.py").write_text("def test_one():\n    pass\n")
    assert suite_functions(suites) == {"test_one"}
    suite_functions.cache_clear()
    (suites / "test_a.py").write_text("def test_two():\n    pass\n")
    assert suite_functions(suites) == {"test_two"}


def test_a_typo_added_after_a_clean_cached_run_stops_collection(tmp_path):
    """End to end: the first collection caches the clean file; the edited file's typo still stops
    the run with file:line."""
    suite = tmp_path / "test_typo_suite.py"
    suite.write_text(GOOD)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}

    def collect():
        return subprocess.run(
            [sys.executable, "-m", "pytest", str(suite), "--collect-only", "-q", "-p", "no:cacheprovider",
             "--rootdir", str(ROOT), "--vc-profile", "sim-stop-copy"],
            capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    first = collect()
    assert first.returncode == 0, first.stdout + first.stderr
    assert list((tmp_path / "xdg" / "vfio-conform" / "source-scan").glob("*.json"))
    suite.write_text(textwrap.dedent(TYPO))
    second = collect()
    assert second.returncode == 4, second.stdout + second.stderr
    assert f"{suite}:4: unknown rule id 'fsm.legal-arcc'" in second.stdout + second.stderr


def test_helpers_a_suite_imports_inside_a_test_are_scanned_too():
    """The random-walk helper is imported by its test only (it loads hypothesis), so it is not
    loaded when collection ends; its ids are checked all the same."""
    from vfio_conform.plugin.rulecheck import scanned_files
    files = scanned_files([])
    assert any(f.endswith("suitelib/depth/walk.py") for f in files)
    assert not any("/lab/" in f or "/report/" in f for f in files)


def test_the_cache_keeps_the_newest_entries_only(tmp_path, monkeypatch):
    monkeypatch.setattr(sourcescan, "MAX_ENTRIES", 2)
    path = tmp_path / "cache.json"
    files = []
    for n in range(3):
        files.append(tmp_path / f"test_{n}.py")
        files[-1].write_text(f"def test_{n}():\n    pass\n")
        cache = ScanCache(path)
        cache.facts(files[-1])
        cache.save()
    assert len(json.loads(path.read_text())["entries"]) == 2
    check = ScanCache(path)
    check.facts(files[2]), check.facts(files[1])
    assert check.parsed == 0
    check.facts(files[0])                  # the oldest was dropped
    assert check.parsed == 1
