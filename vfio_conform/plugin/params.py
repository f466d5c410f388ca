"""Issue-5 parametrization: `region` tests per declared region, and protocol gating of every suite.

Tests say which migration protocol they need with `@pytest.mark.vc_protocol("v1" | "v2" | "any")`
(unmarked = "v2"); on a profile speaking the other protocol they are skipped as not-supported.
"""
from __future__ import annotations

from ..targets.items import item_param
from ..results.outcomes import skip_mark
from ..results import Outcome

PROTOCOL_MARK = "vc_protocol"


def register(config) -> None:
    config.addinivalue_line("markers", f"{PROTOCOL_MARK}(name): migration protocol the test needs "
                                       "('v1', 'v2' or 'any'; unmarked: 'v2')")


def parametrize(metafunc, profiles) -> bool:
    """Parametrize ("profile", "region") from each profile's declared regions; False if not a region test."""
    if "region" not in metafunc.fixturenames:
        return False
    values, ids = [], []
    for profile in profiles:
        for policy in profile.regions.policies:
            values.append((profile, policy))
            ids.append(f"{profile.name}:{policy.name}")
    metafunc.parametrize(("profile", "region"), values, ids=ids)
    return True


def gate_protocol(items) -> None:
    """Skip (not-supported) each item whose protocol mark does not fit its profile's protocol."""
    for item in items:
        profile = item_param(item, "profile")
        if profile is None:
            continue
        mark = item.get_closest_marker(PROTOCOL_MARK)
        need = mark.args[0] if mark else "v2"
        if need not in ("any", profile.protocol):
            item.add_marker(skip_mark(
                Outcome.NOT_SUPPORTED, f"profile {profile.name} speaks migration protocol "
                                       f"{profile.protocol}; this test needs {need}"))
        elif "peer_device" in item.fixturenames and profile.regions.peer_layout == "different":
            item.add_marker(skip_mark(
                Outcome.NOT_SUPPORTED, f"profile {profile.name} declares source and destination "
                                       "with different region layouts (regions.peer_layout: different)"))
