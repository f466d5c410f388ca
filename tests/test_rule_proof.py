"""Every rule can fail: each sim knob alone is caught by a test naming its rule, as docs/rule-proof.md
says; a rule without a proving row fails. Also: docs/rules.md is the catalogue as the code has it.

The knob list comes from the knob table (faults.FAULTS), so a knob added anywhere is proven here.
"""
import pytest

from rule_proof import DOC, committed, prove, render
from suite_runner import ROOT
from vfio_conform.backends.sim.faults import FAULTS
from vfio_conform.model import spec

STALE = "docs/rule-proof.md is stale: regenerate it with  python3 tests/rule_proof.py --write"


def test_every_rule_has_a_knob():
    missing = [r.id for r in spec._RULES if not any(k.rule_id == r.id for k in FAULTS.values())]
    assert not missing, f"rules no sim fault knob breaks: {missing}"


def test_proof_document_has_every_knob_and_proves_every_rule():
    rows = committed()
    assert DOC.exists() and set(rows) == set(FAULTS), (sorted(set(FAULTS) ^ set(rows)), STALE)
    assert all(row.rule == FAULTS[name].rule_id for name, row in rows.items()), STALE
    unproven = [r.id for r in spec._RULES if not any(p.rule == r.id and p.tests for p in rows.values())]
    assert not unproven, f"rules without a proving row: {unproven}"
    assert render(list(rows.values())) == DOC.read_text(), STALE


@pytest.mark.parametrize("knob", sorted(FAULTS))
def test_knob_is_caught_naming_its_rule(tmp_path, knob):
    """The knob alone, through the suite files that name its rule: caught as the document records."""
    proof, out = prove(FAULTS[knob], tmp_path)
    assert proof.tests, (f"knob {knob!r} ({FAULTS[knob].summary}) is caught by no test naming "
                         f"{FAULTS[knob].rule_id!r}:\n{out[-3000:]}")
    assert committed().get(knob) == proof, (STALE, committed().get(knob), proof)


def test_rule_catalogue_document_is_current():
    assert (ROOT / "docs" / "rules.md").read_text() == spec.markdown(), \
        "docs/rules.md is stale: python3 -m vfio_conform.model.spec --markdown > docs/rules.md"


def test_rule_catalogue_cli(capsys):
    assert spec.main(["--markdown"]) == 0
    assert capsys.readouterr().out == spec.markdown()
    assert spec.main([]) == 2


def test_every_rule_cites_a_source_and_a_level():
    for rule in spec._RULES:
        assert rule.level in (spec.MUST, spec.SHOULD) and rule.basis in (spec.UAPI, spec.REFERENCE, spec.PROFILE)
        assert rule.source, rule.id
    assert spec.RULES["fsm.same-state-noop"].level == spec.SHOULD      # driver-loop behaviour, not vfio.h
    assert spec.RULES["region.out-of-bounds-contained"].basis == spec.UAPI
    with pytest.raises(ValueError):
        spec.Rule("x.y", "text", level="may")
    legacy = spec.Rule("x.y", "text", severity="should")          # the former field name still works
    assert (legacy.level, legacy.severity, legacy.basis) == ("should", "should", "uapi")
