"""Collection-time check: every rule id a suite names is in the catalogue (model/spec.py).

Rule ids are strings, so a typo would otherwise pass silently (or label a finding with a rule that
does not exist). At the end of collection this hook reads the `vc_spec` marks of every suite item
and scans for ids the source of the suite modules, of every module in the scanned parts of the
package (loaded or not: a suite may import a helper only inside the test that needs it), and of
the loaded modules under the suites' folders (a third party's helpers): the rule argument of
expect()/expect_errno()/expect_state()/known_rule()/SpecViolation()/vc_spec(), and any string
shaped like an id of a known area ("fsm.legal-arc"). Any unknown id stops the run with a usage
error naming file:line. checks.py also refuses an unknown id whenever a check runs. Each file is
parsed once per content, not once per run (sourcescan.py).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from ..base.constants import SUITES_ROOT
from ..model.spec import RULES
from ..targets.items import item_param, spec_ids
from ..targets.sourcescan import RULE_ARGS, _callee, _strings  # noqa: F401  (what the id scan looks for)
from ..targets.sourcescan import facts_of, package_sources, shared_cache

_PACKAGE = Path(__file__).resolve().parents[1]


def ids_in_source(path: str) -> tuple[tuple[int, str], ...]:
    """(line, id) of every rule id spelt out in the Python file at `path` (parsed once per content)."""
    return facts_of(path).ids


def unknown_ids(paths) -> list[str]:
    """'file:line: unknown rule id ...' for each id in `paths` the catalogue lacks."""
    problems = []
    for path in sorted(set(map(str, paths))):
        for line, rule_id in ids_in_source(path):
            if rule_id not in RULES:
                problems.append(f"{path}:{line}: unknown rule id {rule_id!r}")
    return problems


def _project_modules(roots: list[Path]) -> list[str]:
    """Files of loaded modules outside the package under the given roots (a third party's suites
    and helpers); the package's own are all scanned (package_sources)."""
    package = str(_PACKAGE) + os.sep
    real_dirs: dict[str, str] = {}
    files = []
    for module in list(sys.modules.values()):
        name = getattr(module, "__file__", None)
        if not name or not name.endswith(".py") or name.startswith(package):
            continue
        folder, base = os.path.split(name)
        if folder not in real_dirs:          # one realpath per folder, not per module
            real_dirs[folder] = os.path.realpath(folder)
        path = Path(real_dirs[folder], base)
        if path.is_relative_to(_PACKAGE) or "site-packages" in path.parts:
            continue
        if any(path.is_relative_to(root) for root in roots):
            files.append(str(path))
    return files


def scanned_files(roots: list[Path]) -> list[str]:
    """Every file a run scans besides its suite files: the scanned parts of the package, and the
    loaded modules under `roots` outside it."""
    return sorted({*map(str, package_sources()), *_project_modules(roots)})


def check_items(items, rootdir: Path | None = None) -> list[str]:
    """Problems (unknown ids in marks or in source) of the suite items among `items`; the loaded
    modules under `rootdir` (a third party's suite helpers) are scanned too; the rootdir of the
    harness's own suites is a checkout's top level, whose suites/ and fixtures/ are package sources
    (its tests/ and tools are not suite helpers)."""
    roots = {Path(rootdir).resolve()} - {SUITES_ROOT.resolve()} if rootdir else set()
    problems, paths = [], set()
    real: dict[str, Path] = {}
    for item in items:
        if item_param(item, "profile") is None:
            continue
        for rule_id in spec_ids(item):
            if rule_id not in RULES:
                problems.append(f"{item.nodeid}: vc_spec names unknown rule id {rule_id!r}")
        where = str(item.path)
        if where not in real:                # one resolve per suite file, not per item
            real[where] = Path(where).resolve()
            paths.add(real[where])
            roots.add(real[where].parent)
    if not paths:
        return problems
    problems += unknown_ids([*paths, *scanned_files(sorted(roots))])
    shared_cache().save()
    return sorted(set(problems))


def check_rule_ids(session) -> None:
    """Stop the run before any test if a suite names a rule the catalogue lacks."""
    problems = check_items(session.items, session.config.rootpath)
    if problems:
        raise pytest.UsageError("vfio-conform: unknown rule ids (see vfio_conform/model/spec.py):\n  "
                                + "\n  ".join(problems[:50]))
