"""The published profile JSON Schema: generated from the schema dataclasses, current, and true to
the loader (every shipped profile validates; what the loader refuses, the schema refuses too)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jsonschema
import pytest

from run_cli import vc
from vfio_conform.base.constants import PROFILES_DIR
from vfio_conform.profile import schema as S
from vfio_conform.profile.jsonschema import profile_schema, schema_text
from vfio_conform.profile.yamlmarks import load_marked

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "docs" / "profile.schema.json"
LAB_PROFILES = ROOT / "tests" / "lab" / "profiles"


def _validator():
    schema = json.loads(PUBLISHED.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_published_schema_is_current():
    assert PUBLISHED.read_text() == schema_text(), (
        "docs/profile.schema.json is stale: python3 -m vfio_conform.profile.jsonschema > docs/profile.schema.json")


def test_cli_prints_the_same_schema():
    result = vc("profile", "schema")
    assert result.returncode == 0 and result.stdout == schema_text()


@pytest.mark.parametrize("path", sorted(PROFILES_DIR.glob("*.yaml")) + sorted(LAB_PROFILES.glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_shipped_profile_validates(path):
    data = load_marked(path.read_text(), str(path)).data
    errors = [f"{list(e.path)}: {e.message}" for e in _validator().iter_errors(data)]
    assert not errors, errors


@pytest.mark.parametrize("patch, where", [
    (lambda d: d["features"].update(resett=True), "features"),
    (lambda d: d["migration"].update(flags=["STOP_COPY", "BOGUS"]), "migration"),
    (lambda d: d["regions"].update(BAR9={"access": "read"}), "regions"),
    (lambda d: d["regions"]["BAR0"].update(access="write"), "regions"),
    (lambda d: d.update(hazards={"no-such-hazard": {"safe_on": ["*"]}}), "hazards"),
    (lambda d: d["known_issues"][0].update(test="*"), "known_issues"),
    (lambda d: d["known_issues"][0].pop("link"), "known_issues"),
    (lambda d: d.update(backend="nope"), "backend"),
    (lambda d: d.pop("migration"), ""),
])
def test_schema_refuses_what_the_loader_refuses(patch, where):
    data = load_marked((PROFILES_DIR / "mtty.yaml").read_text(), "mtty.yaml").data
    patch(data)
    errors = list(_validator().iter_errors(data))
    assert errors and all(list(e.absolute_path)[:1] == ([where] if where else []) for e in errors), \
        [(list(e.absolute_path), e.message) for e in errors]


def _sections(cls, seen=None):
    seen = seen if seen is not None else set()
    if cls in seen:
        return seen
    seen.add(cls)
    for f in dataclasses.fields(cls):
        for t in (S.Match, S.Migration, S.Features, S.HazardGate, S.KnownIssue, S.Timeouts,
                  S.RegionPolicy, S.Regions, S.Walk, S.LabTarget):
            if t.__name__ in str(f.type):
                _sections(t, seen)
    return seen


def test_every_yaml_key_of_every_section_is_in_the_schema():
    """Generated, not written: each dataclass field that is a YAML key appears, with its doc."""
    text = json.dumps(profile_schema())
    schema = profile_schema()
    for key in S.yaml_keys(S.Profile):
        assert key in schema["properties"], key
    for cls in _sections(S.Profile):
        docs = S.field_docs(cls)
        for key in S.yaml_keys(cls):
            assert f'"{key}"' in text, (cls.__name__, key)
            if key in docs:
                assert json.dumps(docs[key])[1:-1] in text, (cls.__name__, key)
