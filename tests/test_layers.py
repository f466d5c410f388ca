"""The package's folders are its layers: every import runs downward or within a layer, and no
modules import each other in a circle.

Every module under vfio_conform/, and under the checkout's top-level suites/ and fixtures/ (the wheel's
vfio_conform.suites and vfio_conform.fixtures), is parsed (not imported) and every import it makes
is an edge: module-level and function-level, absolute and relative, type-only ones (under
`if TYPE_CHECKING:`) too, and the plugins a module requires by name (`pytest_plugins`). A module's
layer is the layer of its folder (vfio_conform/<folder>/, or suites/ and fixtures/); the only files
directly in vfio_conform/ are __init__.py and __main__.py. docs/architecture.md's layer table is
checked against LAYERS. Placing a new folder means adding it to LAYERS and to that table.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "vfio_conform"

#: The layers, lowest first: (name, folders). A folder is a path of the checkout: a package folder
#: ("vfio_conform/uapi/"), a top-level folder mapped into the package ("suites/"), or one of the
#: package's own two files ("vfio_conform/__init__.py", "vfio_conform/__main__.py").
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("uapi", ("vfio_conform/uapi/",)),
    ("model", ("vfio_conform/model/",)),
    ("base", ("vfio_conform/base/", "vfio_conform/__init__.py")),
    ("profile", ("vfio_conform/profile/",)),
    ("results", ("vfio_conform/results/",)),
    ("device", ("vfio_conform/device/",)),
    ("backends", ("vfio_conform/backends/",)),
    ("suite library", ("vfio_conform/suitelib/", "vfio_conform/verify/")),
    ("hosts", ("vfio_conform/hosts/",)),
    ("targets", ("vfio_conform/targets/",)),
    ("outputs", ("vfio_conform/outputs/",)),
    ("plugin", ("vfio_conform/plugin/", "fixtures/")),
    ("suite api", ("vfio_conform/api/",)),
    ("suites", ("suites/",)),
    ("report", ("vfio_conform/report/",)),
    ("tools", ("vfio_conform/tools/", "vfio_conform/qemu_lab/", "vfio_conform/fleet/", "vfio_conform/bench/")),
    ("cli", ("vfio_conform/cli/", "vfio_conform/__main__.py")),
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
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(tree):
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


def folder_of(module: str) -> str:
    """The checkout folder (or package file) that places `module`: vfio_conform/<folder>/, suites/,
    fixtures/, or vfio_conform/__init__.py and vfio_conform/__main__.py."""
    parts = module.split(".")
    if len(parts) == 1:
        return f"{PACKAGE}/__init__.py"
    if parts[1] in MAPPED:
        return f"{MAPPED[parts[1]]}/"
    if len(parts) == 2 and parts[1] == "__main__":
        return f"{PACKAGE}/__main__.py"
    return f"{PACKAGE}/{parts[1]}/"


def single_files(root: Path, package: str = PACKAGE) -> frozenset[str]:
    """The modules of the single files directly in the package other than __init__.py and __main__.py."""
    return frozenset(f"{package}.{p.stem}" for p in (root / package).glob("*.py")
                     if p.stem not in ("__init__", "__main__"))


def layer_of(module: str, layers=LAYERS) -> int | None:
    """The rank of `module`'s folder in `layers`; None for a module in no listed folder."""
    folder = folder_of(module)
    for rank, (_, folders) in enumerate(layers):
        if folder in folders:
            return rank
    return None


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


def violations(graph: dict[str, set[str]], layers=LAYERS, singles: frozenset[str] = frozenset()) -> list[str]:
    """One line per single file of the package (`singles`), unplaced module, upward import and import circle."""
    names = [name for name, _ in layers]
    out = [f"{m}: a single file of the package (move it into a folder)" for m in sorted(singles)]
    out += [f"{m}: in no layer (a folder of LAYERS holds every module)" for m in sorted(graph)
            if m not in singles and layer_of(m, layers) is None]
    for source in sorted(graph):
        low = layer_of(source, layers)
        for target in sorted(graph[source]):
            high = layer_of(target, layers)
            if low is not None and high is not None and high > low:
                out.append(f"{source} ({names[low]}) imports {target} ({names[high]}): upward")
    for circle in circles(graph):
        out.append(f"import circle: {' -> '.join(sorted(circle))}")
    return out


def test_vfio_conform_imports_downward_only_without_circles():
    problems = violations(import_graph(ROOT), singles=single_files(ROOT))
    assert not problems, "\n".join(problems)


def test_every_layer_folder_is_listed_once_and_exists():
    folders = [f for _, group in LAYERS for f in group]
    assert len(folders) == len(set(folders))
    assert [f for f in folders if not (ROOT / f).exists()] == []


# -- docs/architecture.md is the same table ----------------------------------------------------------
DOC = ROOT / "docs" / "architecture.md"


def doc_layers(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """The (layer, folders) rows of the doc's layer table (the table under '## Layers')."""
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or cells[0] in ("layer", "") or set(cells[0]) <= set("-"):
            continue
        rows.append((cells[0], tuple(re.findall(r"`([^`]+)`", cells[1]))))
    return rows


def test_the_architecture_doc_lists_the_layers_of_the_test():
    assert doc_layers(DOC.read_text()) == [(name, folders) for name, folders in LAYERS]


def test_every_path_the_architecture_doc_names_exists():
    """Every path in backquotes (a folder, a .py/.md/.sh file) names a file or folder of the checkout:
    from its top, from vfio_conform/, or from one of the layer folders (`constants.py` of base/);
    the wheel's vfio_conform/suites, fixtures and profiles are the checkout's top-level folders."""
    folders = [ROOT / f for _, group in LAYERS for f in group if f.endswith("/")]
    missing = []
    for path in re.findall(r"`([A-Za-z_][\w./-]*(?:/|\.py|\.md|\.sh))`", DOC.read_text()):
        mapped = path.removeprefix(f"{PACKAGE}/") if path.split("/")[1:2] in (["suites"], ["fixtures"], ["profiles"]) else path
        candidates = [ROOT / mapped, ROOT / PACKAGE / path, *(f / path for f in folders)]
        if not any(c.exists() for c in candidates):
            missing.append(path)
    assert missing == []


# -- the checker itself catches what it must ---------------------------------------------------------
def make_package(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / PACKAGE / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


TOY_LAYERS = (("base", ("vfio_conform/__init__.py", "vfio_conform/low/")), ("high", ("vfio_conform/high/",)))


@pytest.mark.parametrize("low_text, problem", [
    ("from ..high import x\n", "vfio_conform.low.m (base) imports vfio_conform.high.x (high): upward"),
    ("def f():\n    from vfio_conform.high import x\n",
     "vfio_conform.low.m (base) imports vfio_conform.high.x (high): upward"),
    ("import vfio_conform.high.sub\n", "vfio_conform.low.m (base) imports vfio_conform.high.sub (high): upward"),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..high import x\n",
     "vfio_conform.low.m (base) imports vfio_conform.high.x (high): upward"),
])
def test_an_upward_import_is_caught_type_only_ones_too(tmp_path, low_text, problem):
    root = make_package(tmp_path, {"__init__.py": "", "low/__init__.py": "", "low/m.py": low_text,
                                   "high/__init__.py": "", "high/sub.py": "x = 1\n", "high/x.py": ""})
    assert problem in violations(import_graph(root), TOY_LAYERS)


def test_a_circle_inside_one_folder_is_caught_type_only_imports_included(tmp_path):
    files = {"__init__.py": "", "high/__init__.py": "", "high/a.py": "from . import b\n",
             "high/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import g\n"}
    graph = import_graph(make_package(tmp_path, files))
    assert violations(graph, TOY_LAYERS) == ["import circle: vfio_conform.high.a -> vfio_conform.high.b"]


def test_a_single_file_of_the_package_or_an_unlisted_folder_is_caught(tmp_path):
    root = make_package(tmp_path, {"__init__.py": "", "stray.py": "", "other/__init__.py": "",
                                   "other/m.py": "", "low/__init__.py": "", "low/m.py": ""})
    problems = violations(import_graph(root), TOY_LAYERS, single_files(root))
    assert "vfio_conform.stray: a single file of the package (move it into a folder)" in problems
    assert "vfio_conform.other.m: in no layer (a folder of LAYERS holds every module)" in problems
    assert not [p for p in problems if p.startswith("vfio_conform.low")]


def test_the_mapped_top_level_folders_and_required_plugins_are_in_the_graph(tmp_path):
    """suites/ and fixtures/ of the checkout are the package's suites and fixtures, and a plugin
    required by name (`pytest_plugins`) is an import like any other."""
    root = make_package(tmp_path, {"__init__.py": "", "low/__init__.py": "",
                                   "low/m.py": "pytest_plugins = ['vfio_conform.fixtures']\n"})
    (root / "fixtures").mkdir()
    (root / "fixtures" / "__init__.py").write_text("from vfio_conform.high import x\n")
    (root / "suites").mkdir()
    (root / "suites" / "test_a.py").write_text("import vfio_conform.low.m\n")
    graph = import_graph(root)
    assert graph["vfio_conform.low.m"] == {"vfio_conform.fixtures"}
    assert graph["vfio_conform.suites.test_a"] == {"vfio_conform.low.m"}
    layers = (*TOY_LAYERS, ("top", ("fixtures/", "suites/")))
    assert violations(graph, layers) == ["vfio_conform.low.m (base) imports vfio_conform.fixtures (top): upward"]


def test_the_doc_table_parser_reads_layer_rows():
    text = "# A\n## Layers\n\n| layer | folders | what |\n|---|---|---|\n| low | `vfio_conform/low/`, `x/` | a |\n\n## Next\n| z | `y/` |\n"
    assert doc_layers(text) == [("low", ("vfio_conform/low/", "x/"))]


def test_suites_import_only_the_suite_api():
    """A suite author's one import: modules under suites/ take the harness from `vfio_conform.api`
    alone (the standard library, pytest and hypothesis beside it); shared helpers live in the suite
    library and are re-exported there, never in a suite's folder."""
    stray = []
    for path in sorted((ROOT / "suites").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else ["." * node.level + (node.module or "")]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            stray += [f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in names
                      if n.startswith(".") or (n.split(".")[0] == PACKAGE and n != f"{PACKAGE}.api")]
    assert stray == [], "suites must import vfio_conform.api only:\n" + "\n".join(stray)
