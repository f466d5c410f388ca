"""Collection-time check: every rule id a suite names is in the catalogue (model/spec.py).

Rule ids are strings, so a typo would otherwise pass silently (or label a finding with a rule that
does not exist). At the end of collection this hook reads the `vc_spec` marks of every suite item
and scans the source of the suite modules and the project modules they load for ids: the rule
argument of expect()/expect_errno()/expect_state()/known_rule()/SpecViolation()/vc_spec(), and any
string shaped like an id of a known area ("fsm.legal-arc"). Any unknown id stops the run with a
usage error naming file:line. checks.py also refuses an unknown id whenever a check runs.
"""
from __future__ import annotations

import ast
import functools
import re
import sys
from pathlib import Path

import pytest

from ..model.spec import RULES
from .items import item_param

#: Callee name -> positions of its rule-id argument ("*" = every positional argument).
RULE_ARGS: dict[str, tuple[int, ...] | str] = {
    "expect": (1,), "expect_errno": (2,), "expect_state": (2,), "known_rule": (0,),
    "SpecViolation": (0,), "vc_spec": "*",
}
RULE_KEYWORDS = ("rule_id",)
_AREAS = sorted({rule_id.split(".", 1)[0] for rule_id in RULES})
#: A string that looks like a rule id of a known area (every id has a dash after the dot).
ID_SHAPE = re.compile(rf"^(?:{'|'.join(map(re.escape, _AREAS))})\.[a-z0-9]+(?:-[a-z0-9]+)+$")
_PACKAGE = Path(__file__).resolve().parents[1]
#: The parts of the package whose ids the suites use (what a suite imports, directly or not); the
#: tools above them (lab, report, bench...) keep their own ids and are never scanned.
_SCANNED = tuple(_PACKAGE / part for part in ("suites", "suitelib", "plugin", "verify", "device",
                                                "backends", "model"))


def spec_ids(item) -> list[str]:
    """Every rule id of `item`'s vc_spec marks, nearest mark first, without repeats."""
    ids: list[str] = []
    for mark in item.iter_markers("vc_spec"):
        for rule_id in mark.args:
            if rule_id not in ids:
                ids.append(rule_id)
    return ids


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


@functools.lru_cache(maxsize=None)
def ids_in_source(path: str) -> tuple[tuple[int, str], ...]:
    """(line, id) of every rule id spelt out in the Python file at `path`."""
    try:
        tree = ast.parse(Path(path).read_text(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return ()
    found: dict[tuple[int, str], None] = {}
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
    return tuple(sorted(found))


def unknown_ids(paths) -> list[str]:
    """'file:line: unknown rule id ...' for each id in `paths` the catalogue lacks."""
    problems = []
    for path in sorted(set(map(str, paths))):
        for line, rule_id in ids_in_source(path):
            if rule_id not in RULES:
                problems.append(f"{path}:{line}: unknown rule id {rule_id!r}")
    return problems


def _project_modules(roots: list[Path]) -> list[str]:
    """Files of loaded modules in the scanned parts of the package, or (outside the package) under
    the given roots (a third party's suites and helpers)."""
    files = []
    for module in list(sys.modules.values()):
        name = getattr(module, "__file__", None)
        if not name or not name.endswith(".py"):
            continue
        path = Path(name).resolve()
        inside = path.is_relative_to(_PACKAGE)
        if not inside and "site-packages" in path.parts:
            continue
        if any(path.is_relative_to(root) for root in (_SCANNED if inside else roots)):
            files.append(str(path))
    return files


def check_items(items, rootdir: Path | None = None) -> list[str]:
    """Problems (unknown ids in marks or in source) of the suite items among `items`; the loaded
    modules under `rootdir` (suite helpers such as fixtures/) are scanned too."""
    problems, paths, roots = [], set(), {Path(rootdir).resolve()} if rootdir else set()
    for item in items:
        if item_param(item, "profile") is None:
            continue
        for rule_id in spec_ids(item):
            if rule_id not in RULES:
                problems.append(f"{item.nodeid}: vc_spec names unknown rule id {rule_id!r}")
        path = Path(str(item.fspath)).resolve()
        paths.add(path)
        roots.add(path.parent)
    if not paths:
        return problems
    problems += unknown_ids(paths | set(_project_modules(sorted(roots))))
    return sorted(set(problems))


def pytest_collection_finish(session) -> None:
    """Stop the run before any test if a suite names a rule the catalogue lacks."""
    problems = check_items(session.items, session.config.rootpath)
    if problems:
        raise pytest.UsageError("vfio-conform: unknown rule ids (see vfio_conform/model/spec.py):\n  "
                                + "\n  ".join(problems[:50]))
