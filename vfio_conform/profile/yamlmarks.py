"""YAML to plain Python values, remembering the line of every key so errors can point at it.

A profile is plain data: mappings with scalar keys, lists, strings, numbers, booleans and null.
Anything else YAML can express is refused with the line it is on, before it can cost memory or
time: aliases (a few hundred bytes of nested aliases expand to gigabytes), explicit tags
(`!custom`, `!!python/name:`), complex keys and very deep nesting.
"""
from __future__ import annotations

import yaml
from yaml.events import AliasEvent

from ..base.errors import ConfigError

#: Deepest nesting of mappings and lists a profile may use (the shipped ones need 5).
MAX_DEPTH = 32

_STD = "tag:yaml.org,2002:"
#: The only YAML types a profile holds (plain scalars resolve to these; explicit ones are refused).
_SCALAR_TAGS = {_STD + t for t in ("str", "int", "float", "bool", "null")}
_MAP_TAG, _SEQ_TAG = _STD + "map", _STD + "seq"


class Marked:
    """Plain data plus `lines`: dotted path ('migration.flags.1') -> 1-based line number."""

    def __init__(self, data, lines: dict[str, int], path: str):
        self.data, self.lines, self.path = data, lines, path

    def line(self, dotted: str) -> int | None:
        """Line of `dotted`, or of its nearest parent that has one."""
        while dotted:
            if dotted in self.lines:
                return self.lines[dotted]
            dotted = dotted.rpartition(".")[0]
        return self.lines.get("")

    def error(self, dotted: str, message: str, hint: str | None = None) -> ConfigError:
        return ConfigError(message, self.path, self.line(dotted), dotted or None, hint)


class _AliasNode(yaml.Node):
    """Where an alias stood: the composer never resolves one, `_convert` refuses it with its field."""

    def __init__(self, anchor: str, start_mark, end_mark):
        super().__init__("alias", anchor, start_mark, end_mark)


class _PlainComposer(yaml.SafeLoader):
    """SafeLoader whose composer leaves aliases unresolved and refuses nesting deeper than MAX_DEPTH."""

    def __init__(self, text: str, path: str):
        super().__init__(text)
        self.profile_path = path
        self.depth = 0

    def compose_node(self, parent, index):
        if self.check_event(AliasEvent):
            event = self.get_event()
            return _AliasNode(event.anchor, event.start_mark, event.end_mark)
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                event = self.peek_event()
                raise ConfigError(f"nested more than {MAX_DEPTH} levels deep", self.profile_path,
                                  event.start_mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def load_marked(text: str, path: str) -> Marked:
    """Parse one YAML document; syntax errors, duplicate keys and non-plain YAML become ConfigError."""
    loader = _PlainComposer(text, path)
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        raise ConfigError(f"not valid YAML: {getattr(exc, 'problem', None) or exc}", path,
                          mark.line + 1 if mark else None) from None
    finally:
        loader.dispose()
    lines: dict[str, int] = {}
    if node is None:
        return Marked({}, {"": 1}, path)
    data = _convert(node, "", lines, path)
    return Marked(data, lines, path)


def _convert(node, dotted: str, lines: dict[str, int], path: str):
    line = node.start_mark.line + 1
    lines.setdefault(dotted, line)
    if isinstance(node, _AliasNode):
        raise ConfigError(f"YAML alias *{node.value} is not allowed in a profile", path, line,
                          dotted or None, "write the value out; aliases can expand without bound")
    if isinstance(node, yaml.MappingNode):
        _check_tag(node, _MAP_TAG, dotted, path)
        out = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                what = {yaml.MappingNode: "mapping", yaml.SequenceNode: "list"}.get(type(key_node), "alias")
                raise ConfigError(f"a mapping key must be a plain string or number, not a {what}",
                                  path, key_line, dotted or None)
            _check_tag(key_node, None, dotted, path)
            key = key_node.value
            sub = f"{dotted}.{key}" if dotted else str(key)
            if key in out:
                raise ConfigError(f"duplicate key {key!r}", path, key_line, sub)
            lines[sub] = key_line
            out[key] = _convert(value_node, sub, lines, path)
        return out
    if isinstance(node, yaml.SequenceNode):
        _check_tag(node, _SEQ_TAG, dotted, path)
        return [_convert(item, f"{dotted}.{i}", lines, path) for i, item in enumerate(node.value)]
    _check_tag(node, None, dotted, path)
    try:
        return yaml.SafeLoader("").construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError) as exc:
        value = node.value if len(node.value) <= 40 else f"{node.value[:20]}... ({len(node.value)} characters)"
        why = str(getattr(exc, "problem", None) or exc)
        raise ConfigError(f"bad {node.tag.removeprefix(_STD)} value {value!r}: {why[:120]}",
                          path, line, dotted or None) from None


def _check_tag(node, want: str | None, dotted: str, path: str) -> None:
    """Refuse explicit tags (`!x`, `!!python/...`) and YAML types a profile never holds."""
    allowed = {want} if want else _SCALAR_TAGS
    if node.tag not in allowed:
        tag = "!!" + node.tag.removeprefix(_STD) if node.tag.startswith(_STD) else node.tag
        raise ConfigError(f"YAML tag {tag} is not allowed in a profile", path,
                          node.start_mark.line + 1, dotted or None,
                          "a profile holds plain strings, numbers, booleans, lists and mappings"
                          + ("; quote the value" if node.tag == _STD + "timestamp" else ""))
