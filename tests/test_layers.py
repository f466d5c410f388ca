"""The package imports downward only and has no import circle.

Every module under vfio_conform/, and under the checkout's top-level suites/ and fixtures/ (the wheel's
vfio_conform.suites and vfio_conform.fixtures), is parsed (not imported) and every import it makes
is an edge: module-level and function-level, absolute and relative, and the plugins a module
requires by name (`pytest_plugins`). Imports under `if TYPE_CHECKING:` are left out (they never run). A module may import its own layer or a lower one; docs/architecture.md
explains the layers. Placing a new package means adding it to LAYERS, nothing else.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "vfio_conform"

#: The layers, lowest first: (name, module prefixes). A module belongs to the layer of its longest
#: matching prefix (a prefix matches itself and its submodules).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", ("vfio_conform", "vfio_conform.base.constants", "vfio_conform.base.exitcodes")),
    ("uapi", ("vfio_conform.uapi",)),
    ("model", ("vfio_conform.model",)),
    ("errors", ("vfio_conform.base.errors", "vfio_conform.base.debian", "vfio_conform.base.outfile")),
    ("profile", ("vfio_conform.profile",)),
    ("results", ("vfio_conform.results", "vfio_conform.results.outcomes")),
    ("device", ("vfio_conform.device",)),
    ("backends", ("vfio_conform.backends",)),
    ("suite library", ("vfio_conform.suitelib", "vfio_conform.verify")),
    ("plugin", ("vfio_conform.plugin", "vfio_conform.fixtures")),
    ("suites", ("vfio_conform.suites",)),
    ("report", ("vfio_conform.report",)),
    ("tools", ("vfio_conform.qemu_lab", "vfio_conform.fleet", "vfio_conform.tools.kselftest", "vfio_conform.bench", "vfio_conform.tools.header_check",
               "vfio_conform.tools.profile_draft", "vfio_conform.tools.profile_check", "vfio_conform.cli.profile")),
    ("cli", ("vfio_conform.cli.app", "vfio_conform.__main__")),
)

#: Circles not yet taken apart, each as the set of modules it may span (a circle inside one of
#: these sets is tolerated; any other fails). Remove an entry once its circle is gone.
KNOWN_CIRCLES: tuple[frozenset[str], ...] = (
)


#: Top-level folders of the checkout that the wheel maps into the package (pyproject.toml's package-dir).
MAPPED = {"suites": "suites", "fixtures": "fixtures"}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[0] in MAPPED:
        parts = [PACKAGE, MAPPED[parts[0]], *parts[1:]]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources(root: Path, package: str = PACKAGE) -> list[Path]:
    """The package's files and those of the top-level folders mapped into it."""
    return [p for top in (package, *MAPPED) for p in (root / top).rglob("*.py")]


def _required_plugins(node: ast.AST) -> list[str]:
    """The module names of a `pytest_plugins = [...]` assignment (pytest imports them)."""
    if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytest_plugins"
                                            for t in node.targets):
        return [c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant) and isinstance(c.value, str)]
    return []


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the nodes inside `if TYPE_CHECKING:` bodies."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for stmt in node.body:
                skip.update(id(sub) for sub in ast.walk(stmt))
    return skip


def import_graph(root: Path, package: str = PACKAGE) -> dict[str, set[str]]:
    """module -> the package modules it imports (`from pkg import name` counts as pkg.name if that
    is a module, else as pkg)."""
    modules = {module_name(p, root): p for p in sources(root, package)}

    def known(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        skip = _type_checking_only(tree)
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                edges.update(known(a.name) for a in node.names if a.name.split(".")[0] == package)
            elif required := _required_plugins(node):
                edges.update(known(m) for m in required if m.split(".")[0] == package)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here.split(".")[:len(here.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.split(".")[0] != package:
                    continue
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    edges.add(full if full in modules else known(target))
        edges.discard(name)
        edges.discard("")
        graph[name] = edges
    return graph


def layer_of(module: str, layers=LAYERS) -> int | None:
    best, best_len = None, -1
    for rank, (_, prefixes) in enumerate(layers):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = rank, len(prefix)
    return best


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(component)
    return found


def violations(graph: dict[str, set[str]], layers=LAYERS, known_circles=KNOWN_CIRCLES) -> list[str]:
    """One line per unplaced module, upward import and import circle."""
    names = [name for name, _ in layers]
    out = [f"{m}: in no layer (add it to LAYERS)" for m in sorted(graph) if layer_of(m, layers) is None]
    for source in sorted(graph):
        low = layer_of(source, layers)
        for target in sorted(graph[source]):
            high = layer_of(target, layers)
            if low is not None and high is not None and high > low:
                out.append(f"{source} ({names[low]}) imports {target} ({names[high]}): upward")
    for circle in circles(graph):
        if not any(circle <= allowed for allowed in known_circles):
            out.append(f"import circle: {' -> '.join(sorted(circle))}")
    return out


def test_vfio_conform_imports_downward_only_without_circles():
    problems = violations(import_graph(ROOT))
    assert not problems, "\n".join(problems)


def test_every_layer_prefix_is_used_once():
    prefixes = [p for _, group in LAYERS for p in group]
    assert len(prefixes) == len(set(prefixes))


# -- the checker itself catches what it must ---------------------------------------------------------
def make_package(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / PACKAGE / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


TOY_LAYERS = (("base", ("vfio_conform",)), ("low", ("vfio_conform.low",)),
              ("high", ("vfio_conform.high",)))


@pytest.mark.parametrize("low_text, problem", [
    ("from .high import x\n", "vfio_conform.low (low) imports vfio_conform.high.x (high): upward"),
    ("def f():\n    from vfio_conform.high import x\n",
     "vfio_conform.low (low) imports vfio_conform.high.x (high): upward"),
    ("import vfio_conform.high.sub\n", "vfio_conform.low (low) imports vfio_conform.high.sub (high): upward"),
])
def test_an_upward_import_is_caught(tmp_path, low_text, problem):
    root = make_package(tmp_path, {"__init__.py": "", "low.py": low_text, "high/__init__.py": "",
                                   "high/sub.py": "x = 1\n", "high/x.py": ""})
    assert problem in violations(import_graph(root), TOY_LAYERS, ())


def test_a_circle_is_caught_and_type_checking_imports_are_not_edges(tmp_path):
    files = {"__init__.py": "", "high/__init__.py": "", "high/a.py": "from . import b\n",
             "high/b.py": "def f():\n    from .a import g\n",
             "low.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .high import a\n"}
    graph = import_graph(make_package(tmp_path, files))
    assert violations(graph, TOY_LAYERS, ()) == ["import circle: vfio_conform.high.a -> vfio_conform.high.b"]
    assert violations(graph, TOY_LAYERS, (frozenset({"vfio_conform.high.a", "vfio_conform.high.b"}),)) == []
    assert graph["vfio_conform.low"] == set()


def test_a_module_outside_every_layer_is_caught(tmp_path):
    root = make_package(tmp_path, {"__init__.py": "", "stray.py": ""})
    layers = (("low", ("vfio_conform.low",)),)
    assert "vfio_conform: in no layer (add it to LAYERS)" in violations(import_graph(root), layers, ())


def test_the_mapped_top_level_folders_and_required_plugins_are_in_the_graph(tmp_path):
    """suites/ and fixtures/ of the checkout are the package's suites and fixtures, and a plugin
    required by name (`pytest_plugins`) is an import like any other."""
    root = make_package(tmp_path, {"__init__.py": "", "low.py": "pytest_plugins = ['vfio_conform.fixtures']\n"})
    (root / "fixtures").mkdir()
    (root / "fixtures" / "__init__.py").write_text("from vfio_conform.high import x\n")
    (root / "suites").mkdir()
    (root / "suites" / "test_a.py").write_text("import vfio_conform.low\n")
    graph = import_graph(root)
    assert graph["vfio_conform.low"] == {"vfio_conform.fixtures"}
    assert graph["vfio_conform.suites.test_a"] == {"vfio_conform.low"}
    layers = (*TOY_LAYERS, ("top", ("vfio_conform.fixtures", "vfio_conform.suites")))
    assert violations(graph, layers, ()) == [
        "vfio_conform.low (low) imports vfio_conform.fixtures (top): upward"]
