"""YAML to plain Python values, remembering the line of every key so errors can point at it."""
from __future__ import annotations

import yaml

from ..errors import ConfigError


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


def load_marked(text: str, path: str) -> Marked:
    """Parse one YAML document; syntax errors and duplicate keys become ConfigError with a line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"not valid YAML: {getattr(exc, 'problem', exc)}", path,
                          mark.line + 1 if mark else None) from None
    lines: dict[str, int] = {}
    if node is None:
        return Marked({}, {"": 1}, path)
    data = _convert(node, "", lines, path)
    return Marked(data, lines, path)


def _convert(node, dotted: str, lines: dict[str, int], path: str):
    lines.setdefault(dotted, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out = {}
        for key_node, value_node in node.value:
            key = key_node.value
            sub = f"{dotted}.{key}" if dotted else str(key)
            if key in out:
                raise ConfigError(f"duplicate key {key!r}", path, key_node.start_mark.line + 1, sub)
            lines[sub] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, sub, lines, path)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, f"{dotted}.{i}", lines, path) for i, item in enumerate(node.value)]
    return yaml.SafeLoader("").construct_object(node, deep=True)
