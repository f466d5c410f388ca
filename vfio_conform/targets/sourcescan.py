"""What the collection-time checks read from Python sources, parsed once per file content.

The rule-id check (rulecheck.py) needs the rule ids each suite file and suite helper spells out; the
waiver check (waivers.py) needs the test functions each suite file defines. Both come from one
parse of the file (`scan_tree`), and the result is kept in a cache keyed by the sha256 of the file's
bytes, so a run parses only the files whose content no run has scanned before.

The cache is one JSON file under the user cache directory, named by a fingerprint of the scanner
(its format and the id patterns it looks for), so another version of the scanner never reads it.
It only saves work: an unreadable or malformed cache, or a malformed entry, is ignored and the file
parsed again; it is written atomically (a temporary file renamed over it) and a failure to write
it is ignored. A host whose files another machine sees read-only (the lab guest) fills it before
that machine runs with `warm_cache()`.
"""
from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import os
import re
from pathlib import Path

from ..base.constants import FIXTURES_DIR, PACKAGE_DIR, SUITES_DIR, user_cache_dir
from ..model.spec import RULES

#: Callee name -> positions of its rule-id argument ("*" = every positional argument).
RULE_ARGS: dict[str, tuple[int, ...] | str] = {
    "expect": (1,), "expect_errno": (2,), "expect_state": (2,), "known_rule": (0,),
    "SpecViolation": (0,), "vc_spec": "*",
}
RULE_KEYWORDS = ("rule_id",)
_AREAS = sorted({rule_id.split(".", 1)[0] for rule_id in RULES})
#: A string that looks like a rule id of a known area (every id has a dash after the dot).
ID_SHAPE = re.compile(rf"^(?:{'|'.join(map(re.escape, _AREAS))})\.[a-z0-9]+(?:-[a-z0-9]+)+$")
#: The parts of the package whose ids the suites use (what a suite imports, directly or not); the
#: tools above them (lab, report, bench...) keep their own ids and are never scanned.
SCANNED_PARTS = (SUITES_DIR.resolve(), FIXTURES_DIR.resolve(), *(PACKAGE_DIR.resolve() / part for part in (
    "suitelib", "plugin", "verify", "device", "backends", "model")))
#: Bump when what scan_tree() records changes.
SCAN_FORMAT = 1
#: Entries kept in the cache file (the oldest go first): a checkout has about 150 files scanned,
#: an entry is a few hundred bytes, and a run reads the whole file.
MAX_ENTRIES = 1024


@dataclasses.dataclass(frozen=True)
class SourceFacts:
    """ids: (line, id) of every rule id the file spells out; tests: its test_* function names."""

    ids: tuple[tuple[int, str], ...] = ()
    tests: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"ids": [list(pair) for pair in self.ids], "tests": list(self.tests)}

    @classmethod
    def from_json(cls, raw) -> "SourceFacts | None":
        """The facts of a cache entry, or None when the entry is malformed."""
        try:
            ids = tuple((int(line), str(rule_id)) for line, rule_id in raw["ids"])
            tests = tuple(str(name) for name in raw["tests"])
        except (KeyError, TypeError, ValueError):
            return None
        return cls(ids, tests)


def _callee(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _strings(node: ast.expr) -> list[ast.Constant]:
    """String constants an argument evaluates to (a literal, or either branch of `a if c else b`)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node]
    if isinstance(node, ast.IfExp):
        return _strings(node.body) + _strings(node.orelse)
    return []


def scan_tree(tree: ast.AST) -> SourceFacts:
    """The rule ids spelt out in `tree` (rule arguments of the checks and marks, and any string
    shaped like an id), and the test functions it defines."""
    found: dict[tuple[int, str], None] = {}
    tests: dict[str, None] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            where = RULE_ARGS.get(_callee(node.func))
            args = []
            if where == "*":
                args = list(node.args)
            elif where:
                args = [node.args[i] for i in where if i < len(node.args)]
            args += [k.value for k in node.keywords if k.arg in RULE_KEYWORDS]
            for arg in args:
                for const in _strings(arg):
                    found[(const.lineno, const.value)] = None
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and ID_SHAPE.match(node.value):
            found[(node.lineno, node.value)] = None
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
            tests[node.name] = None
    return SourceFacts(tuple(sorted(found)), tuple(sorted(tests)))


def fingerprint() -> str:
    """Names the scanner: its format and every pattern it looks for (another scanner, another file)."""
    spec = json.dumps([SCAN_FORMAT, RULE_ARGS, RULE_KEYWORDS, ID_SHAPE.pattern], sort_keys=True)
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


def cache_file(cache_dir: Path | None = None) -> Path:
    """The cache of this scanner: `<user cache dir>/source-scan/<fingerprint>.json`."""
    return Path(cache_dir or user_cache_dir()) / "source-scan" / f"{fingerprint()}.json"


def _read_entries(path: Path) -> dict[str, dict]:
    try:
        raw = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    entries = raw.get("entries") if isinstance(raw, dict) else None
    return dict(entries) if isinstance(entries, dict) else {}


class ScanCache:
    """SourceFacts by file content, backed by the JSON file at `path` (None: memory only)."""

    def __init__(self, path: Path | None):
        self.path = path
        self._entries: dict[str, dict] | None = None
        self._new: dict[str, dict] = {}
        self.parsed = 0          #: files parsed (not found in the cache) by this object

    def entries(self) -> dict[str, dict]:
        if self._entries is None:
            self._entries = _read_entries(self.path) if self.path is not None else {}
        return self._entries

    def facts(self, path) -> SourceFacts:
        """The facts of the Python file at `path` (empty if it cannot be read or parsed)."""
        try:
            data = Path(path).read_bytes()
        except OSError:
            return SourceFacts()
        key = hashlib.sha256(data).hexdigest()
        raw = self.entries().get(key)
        if raw is not None:
            facts = SourceFacts.from_json(raw)
            if facts is not None:
                return facts
        try:
            tree = ast.parse(data, filename=str(path))
        except (SyntaxError, ValueError):
            return SourceFacts()
        self.parsed += 1
        facts = scan_tree(tree)
        self._entries[key] = self._new[key] = facts.to_json()
        return facts

    def save(self) -> None:
        """Write what this object parsed into the cache file (merged with what is there now)."""
        if self.path is None or not self._new:
            return
        import tempfile
        entries = {**_read_entries(self.path), **self._new}
        if len(entries) > MAX_ENTRIES:
            entries = dict(list(entries.items())[-MAX_ENTRIES:])
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".source-scan-", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w") as out:
                    os.fchmod(out.fileno(), 0o644)      # no secret: another user may read it
                    json.dump({"fingerprint": fingerprint(), "entries": entries}, out)
                os.replace(tmp, self.path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:          # a read-only or full cache directory: the next run parses again
            return
        self._new.clear()


_SHARED: ScanCache | None = None


def shared_cache() -> ScanCache:
    """This process's cache (of the current user cache directory)."""
    global _SHARED
    path = cache_file()
    if _SHARED is None or _SHARED.path != path:
        _SHARED = ScanCache(path)
    return _SHARED


def facts_of(path) -> SourceFacts:
    """The facts of one Python file, from this process's cache."""
    return shared_cache().facts(path)


def package_sources() -> list[Path]:
    """Every Python file of the scanned parts of the package."""
    found = []
    for part in SCANNED_PARTS:
        for folder, dirs, files in os.walk(part):      # os.walk: a fraction of rglob's cost
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            found += [Path(folder, name) for name in files if name.endswith(".py")]
    return sorted(found)


def warm_cache(cache_dir: Path | None = None, extra: list[Path] | tuple[Path, ...] = ()) -> int:
    """Scan every file a run checks (the scanned parts of the package, and `extra` files) into the
    cache under `cache_dir` (default: the user cache directory); returns how many files were
    parsed (0 when the cache already had them all). For a machine that sees this host's files
    read-only and has its cache directory at the same place (the lab guest)."""
    cache = ScanCache(cache_file(cache_dir))
    for path in [*package_sources(), *extra]:
        cache.facts(path)
    cache.save()
    return cache.parsed
