"""Rule ids are checked: a misspelt id stops the run at collection, and checks refuse it when they run."""
import subprocess
import sys
import textwrap

import pytest

from suite_runner import ROOT
from vfio_conform.suitelib.checks import UnknownRule, expect, expect_errno, expect_state
from vfio_conform.plugin.rulecheck import ids_in_source, unknown_ids


def _suite(tmp_path, body: str):
    path = tmp_path / "test_typo_suite.py"
    path.write_text(textwrap.dedent(body))
    return path


def _collect(path):
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(path), "--collect-only", "-q", "-p", "no:cacheprovider",
         "--rootdir", str(ROOT), "--vc-profile", "sim-stop-copy"],
        capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_source_scan_finds_ids_in_checks_and_marks(tmp_path):
    path = _suite(tmp_path, '''
        import pytest
        from vfio_conform.suitelib.checks import expect, expect_errno
        @pytest.mark.vc_spec("fsm.legal-arc", "fsm.no-such-rule")
        def test_x(profile):
            expect(True, "fsm.legal-arc", "m")
            expect_errno(0, 0, "fsm.legl-arc" if profile else "fsm.state-after-set", "op")
            rule = "stream.no-such-thing"
    ''')
    found = {rule_id for _, rule_id in ids_in_source(str(path))}
    assert found == {"fsm.legal-arc", "fsm.no-such-rule", "fsm.legl-arc", "fsm.state-after-set",
                     "stream.no-such-thing"}
    problems = unknown_ids([path])
    assert len(problems) == 3 and all(str(path) in p for p in problems)
    assert any("'fsm.legl-arc'" in p for p in problems)


@pytest.mark.parametrize("body,typo", [
    ('''
     import pytest
     @pytest.mark.vc_spec("fsm.legal-arcc")
     def test_x(profile):
         pass
     ''', "fsm.legal-arcc"),
    ('''
     from vfio_conform.suitelib.checks import expect
     def test_x(profile):
         expect(True, "stream.stop-copy-eoff", "never reached with a typo")
     ''', "stream.stop-copy-eoff"),
])
def test_typo_fails_collection(tmp_path, body, typo):
    proc = _collect(_suite(tmp_path, body))
    assert proc.returncode == 4, proc.stdout + proc.stderr         # pytest's usage-error exit
    assert typo in proc.stdout + proc.stderr


def test_shipped_suites_collect_clean():
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "suites"), "--collect-only", "-q", "-p", "no:cacheprovider",
         "--rootdir", str(ROOT), "--vc-profile", "sim-p2p-precopy"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_checks_refuse_unknown_ids_even_when_passing():
    with pytest.raises(UnknownRule):
        expect(True, "fsm.legal-arcc", "holds")
    with pytest.raises(UnknownRule):
        expect_errno(0, 0, "nope.rule-id", "op")
    with pytest.raises(UnknownRule):
        expect_state(None, 0, "fsm.state-after-sett", "ctx")
    expect(True, "fsm.legal-arc", "holds")


#: Suites whose tests must be tagged with every rule their checks name (the arc, data, DMA suites).
TAGGED_SUITES = [*sorted((ROOT / "suites" / "fsm").glob("test_*.py")),
                 *sorted((ROOT / "suites" / "data").glob("test_*.py")),
                 ROOT / "suites" / "depth" / "test_dma_logging.py"]


def _untagged(path) -> list[str]:
    """'test: ids' for each test function whose expect*() ids are missing from its vc_spec marks."""
    import ast
    from vfio_conform.plugin.rulecheck import RULE_ARGS, _callee, _strings
    out = []
    for fn in ast.parse(path.read_text()).body:
        if not isinstance(fn, ast.FunctionDef) or not fn.name.startswith("test_"):
            continue
        marks, starred = set(), False
        for deco in fn.decorator_list:
            if isinstance(deco, ast.Call) and _callee(deco.func) == "vc_spec":
                starred |= any(isinstance(a, ast.Starred) for a in deco.args)
                marks |= {c.value for a in deco.args for c in _strings(a)}
        if starred:
            marks |= set(_module_constant(path, "ARC_RULES"))
        used = set()
        for node in ast.walk(fn):
            where = isinstance(node, ast.Call) and RULE_ARGS.get(_callee(node.func))
            if where and where != "*":
                used |= {c.value for i in where if i < len(node.args) for c in _strings(node.args[i])}
        if used - marks:
            out.append(f"{path.name}::{fn.name}: {sorted(used - marks)}")
    return out


def _module_constant(path, name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(f"_tagged_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name, ())


def test_suite_tests_are_tagged_with_every_rule_they_check():
    problems = [p for path in TAGGED_SUITES for p in _untagged(path)]
    assert not problems, problems


def test_typo_in_a_suite_helper_fails_collection(tmp_path):
    """A helper module the suite imports (like fixtures/sessions.py, outside the test's own folder)
    is scanned too: its typo stops the run."""
    (tmp_path / "conftest.py").write_text("")
    (tmp_path / "helpers").mkdir()
    (tmp_path / "helpers" / "__init__.py").write_text("")
    (tmp_path / "helpers" / "walkers.py").write_text(textwrap.dedent('''
        from vfio_conform.suitelib.checks import expect
        def check(device):
            expect(True, "fsm.state-after-sett", "typo in a helper")
    '''))
    (tmp_path / "suite").mkdir()
    test = tmp_path / "suite" / "test_uses_helper.py"
    test.write_text("from helpers.walkers import check\n\ndef test_x(profile):\n    check(None)\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(test), "--collect-only", "-q", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), "--vc-profile", str(ROOT / "profiles" / "sim-stop-copy.yaml")],
        capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "fsm.state-after-sett" in proc.stdout + proc.stderr and "walkers.py" in proc.stdout + proc.stderr


def test_tools_with_their_own_rule_ids_are_not_scanned_even_when_loaded():
    """The lab's consumer verdict names its own ids (consumer.*); a process that loaded it (the
    tests, `profile check` collecting in-process) must not see them as unknown suite ids."""
    import vfio_conform.qemu_lab.consumer_verdict  # noqa: F401  (loaded, as in a test process)
    import vfio_conform.suitelib.consumers  # noqa: F401
    from vfio_conform.base.constants import PACKAGE_DIR
    from vfio_conform.plugin.rulecheck import scanned_files, unknown_ids
    files = scanned_files([PACKAGE_DIR])      # rootdir of a run is the package directory
    assert not any("/lab/" in f for f in files), [f for f in files if "/lab/" in f]
    assert any(f.endswith("suitelib/consumers.py") for f in files)
    assert unknown_ids(files) == []
