"""The profile schema as a JSON Schema (draft 2020-12), generated from the schema dataclasses.

    python3 -m vfio_conform.profile.jsonschema > docs/profile.schema.json

Every section is the dataclass whose YAML keys are its fields (`schema.yaml_keys`), each key
described by its `doc` metadata or the class docstring's Args (`schema.field_docs`); types come
from the annotations, allowed values from a field's `choices` metadata, the extension groups and
the schema's constants. A new field needs nothing here: regenerate the file. The few mappings
whose keys are names rather than fields (hazards, regions, backend_config) are described from the
same constants the loader checks them with.
"""
from __future__ import annotations

import dataclasses
import enum
import json
import sys
import types
import typing

from ..base.extensions import BACKENDS, VERIFY
from ..model.spec import RULES
from . import schema as S

SCHEMA_ID = "https://vfio-conform.invalid/profile.schema.json"
_HEX = "integers may be written in hex (0x15b3)"

#: Allowed values of fields that name a choice without `choices` metadata (class name, field).
_CHOICES = {
    ("Profile", "backend"): lambda: sorted(BACKENDS.names()),
    ("Profile", "verify"): lambda: sorted(VERIFY.names()),
    ("KnownIssue", "rule"): lambda: sorted(RULES),
    ("RegionPolicy", "access"): lambda: list(S.REGION_ACCESS),
    ("Regions", "peer_layout"): lambda: list(S.PEER_LAYOUTS),
    ("LabTarget", "mode"): lambda: ["mdev", "pci"],
}
#: Keys the loader requires although their record has a default.
_REQUIRED = {"Profile": ("migration",)}
#: Patterns the loader enforces on strings (class name, field).
_PATTERNS = {("Profile", "name"): r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
             ("KnownIssue", "test"): S.WAIVER_TEST.pattern.join("^$"),
             ("KnownIssue", "link"): r"^https?://"}


def profile_schema() -> dict:
    """The JSON Schema of a profile file."""
    root = _record(S.Profile)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "title": "vfio-conform profile",
            "description": (S.Profile.__doc__ or "").strip().splitlines()[0], **root}


def schema_text() -> str:
    return json.dumps(profile_schema(), indent=2, sort_keys=False) + "\n"


def _record(cls) -> dict:
    """An object whose properties are the YAML keys of dataclass `cls`."""
    hints = typing.get_type_hints(cls, vars(S))
    docs = S.field_docs(cls)
    props, required = {}, []
    for f in dataclasses.fields(cls):
        if not f.metadata.get("yaml", True):
            continue
        special = _special(cls, f.name)
        prop = special or _type(hints[f.name], cls, f.name)
        doc = f.metadata.get("doc") or docs.get(f.name)
        if doc:
            prop = {"description": doc, **{k: v for k, v in prop.items() if k != "description"}}
        default = None if special else _default(f)
        if default is not None:
            prop["default"] = default
        props[f.name] = prop
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
    required += [k for k in _REQUIRED.get(cls.__name__, ()) if k in props and k not in required]
    out = {"type": "object", "properties": props, "additionalProperties": False}
    if cls.__doc__:
        out = {"description": cls.__doc__.strip().splitlines()[0], **out}
    if required:
        out["required"] = required
    return out


def _special(cls, name: str) -> dict | None:
    """Sections that are mappings keyed by names the loader knows, not by dataclass fields."""
    if cls is S.Profile and name == "hazards":
        return {"type": "object", "propertyNames": {"enum": list(S.HAZARDS)},
                "additionalProperties": {**_record(S.HazardGate), "required": ["safe_on"]}}
    if cls is S.Profile and name == "regions":
        regions = _record(S.Regions)
        regions.pop("additionalProperties")
        policy = _record(S.RegionPolicy)
        names = "|".join(S.REGION_NAMES)
        return {**regions, "patternProperties": {f"^({names}|[0-9]+)$": policy},
                "additionalProperties": False}
    if cls is S.Profile and name == "backend_config":
        return {"type": "object", "propertyNames": {"enum": sorted(BACKENDS.names())},
                "additionalProperties": {"type": ["object", "null"]},
                "description": "{backend name: its section}; only the profile's own backend, checked "
                               "by that backend"}
    return None


def _type(tp, cls, name: str) -> dict:
    choices = _choices(cls, name)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        base = _type(inner[0], cls, name) if len(inner) == 1 else {"anyOf": [_type(a, cls, name) for a in inner]}
        return {"anyOf": [base, {"type": "null"}]} if type(None) in args else base
    if isinstance(tp, type) and issubclass(tp, enum.Flag):
        return {"type": "array", "items": {"enum": list(tp.__members__)}, "uniqueItems": True}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": _type(args[0], cls, name)}
        return {"type": "array", "prefixItems": [_type(a, cls, name) for a in args],
                "minItems": len(args), "maxItems": len(args)}
    if dataclasses.is_dataclass(tp):
        return _record(tp)
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        if cls is S.RegionPolicy and name == "widths":
            return {"enum": list(S.REGION_WIDTHS)}
        return {"type": "integer", "minimum": 0, "$comment": _HEX}
    if tp is float:
        return {"type": "number"}
    if tp is str:
        out = {"type": "string"}
        if choices:
            out["enum"] = choices
        pattern = _PATTERNS.get((cls.__name__, name))
        if pattern:
            out["pattern"] = pattern
        return out
    if tp is dict or origin is dict:
        return {"type": "object"}
    raise TypeError(f"{cls.__name__}.{name}: no JSON Schema for {tp!r}")


def _choices(cls, name: str) -> list | None:
    f = next((f for f in dataclasses.fields(cls) if f.name == name), None)
    if f is not None and "choices" in f.metadata:
        return list(f.metadata["choices"])
    make = _CHOICES.get((cls.__name__, name))
    return make() if make else None


def _default(f: dataclasses.Field):
    """The field's default as JSON (None when it has none or it is null)."""
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return None
    return _json(value)


def _json(value):
    if isinstance(value, enum.Flag):
        return [m.name for m in type(value) if m & value and m.name]
    if dataclasses.is_dataclass(value):
        return None               # a nested section: its own properties carry the defaults
    if isinstance(value, (tuple, list)):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()} or None
    return value


if __name__ == "__main__":
    sys.stdout.write(schema_text())
