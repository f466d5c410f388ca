"""A test's id without its profile: the key that lines up one test across profiles and renames.

The plugin parametrizes every suite test with the profile first; the profile's part of the id is
the profile name alone (`test_x[sim-p2p]`), or the name, a colon and the arc or region
(`test_arc[sim-p2p:RUNNING->STOP]`). Further parameters follow, joined by '-'
(`test_data_size_in_every_state[sim-p2p-STOP]`). The key drops the profile name:
`test_x`, `test_arc[RUNNING->STOP]`, `test_data_size_in_every_state[STOP]`.
"""
from __future__ import annotations


def key_from_parts(name: str, parts: list[str], profile: str) -> str:
    """The key of test function `name` whose id parts (one per parametrization) include the
    profile's part; the first part that is the profile's loses the profile name."""
    out, done = [], False
    for part in parts:
        if not done and (part == profile or part.startswith(f"{profile}:")):
            done = True
            part = part[len(profile) + 1:]
        if part:
            out.append(part)
    return f"{name}[{'-'.join(out)}]" if out else name


def strip_profile(test_id: str, profile: str) -> str:
    """The key of a stored test id whose parameters start with `profile`'s part (how the plugin
    builds ids); an id without that part is returned unchanged."""
    name, sep, params = test_id.partition("[")
    if not sep or not params.endswith("]") or not profile:
        return test_id
    params = params[:-1]
    if params == profile:
        return name
    if params.startswith((f"{profile}:", f"{profile}-")):
        return f"{name}[{params[len(profile) + 1:]}]"
    return test_id
