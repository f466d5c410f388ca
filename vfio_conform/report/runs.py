"""Resolve RUN arguments (id, 'latest', 'prev', session id) to stored runs with their rows."""
from __future__ import annotations

import dataclasses
import re


class RunNotFound(LookupError):
    """A RUN argument that names nothing in the store."""


@dataclasses.dataclass
class RunData:
    """One stored run: its `runs` row, its `results` rows and its profile's waivers (WaiverUse)."""

    meta: dict
    rows: list[dict]
    waivers: list = dataclasses.field(default_factory=list)

    @property
    def id(self) -> int:
        return int(self.meta["id"])

    @property
    def profile(self) -> str:
        return self.meta["profile"]


def resolve(store, spec: str, profile: str | None = None, host: str | None = None) -> list[dict]:
    """Run rows a spec names: 'N' (run id), 'latest' (newest session, of `host` if given),
    'S' / 'session:S' (session)."""
    spec = spec.strip()
    if re.fullmatch(r"#?\d+", spec):
        run = store.run(int(spec.lstrip("#")))
        if run is None:
            raise RunNotFound(f"no run #{spec.lstrip('#')} in {store.url}")
        return [run]
    if spec == "latest":
        newest = store.runs(limit=1, profile=profile, host=host)
        if not newest:
            raise RunNotFound(f"no runs{' of ' + profile if profile else ''}"
                              f"{' from host ' + host if host else ''} in {store.url}")
        runs = store.session_runs(newest[0]["session"])
    else:
        runs = store.session_runs(spec.removeprefix("session:"))
        if not runs:
            raise RunNotFound(f"{spec!r} is neither a run id, 'latest' nor a session in {store.url}")
    return [r for r in runs if profile is None or r["profile"] == profile]


def previous(store, run: dict, same_host: bool = True) -> dict | None:
    """The newest run of the same profile (and by default the same host) stored before `run`."""
    host = run.get("host") if same_host else None
    for cand in store.runs(limit=10_000, profile=run["profile"], host=host):
        if cand["id"] < run["id"]:
            return cand
    return None


def load(store, runs: list[dict]) -> list[RunData]:
    from ..results.waivers import load_waivers
    return [RunData(r, store.results(r["id"]), load_waivers(store, r["id"])) for r in runs]
