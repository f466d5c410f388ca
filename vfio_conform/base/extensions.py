"""Extension groups: backends, verify hooks and report formats, by name, built in or by entry point.

Each group is one table of names. The harness's own members are listed here (a module:attribute
string, imported only when used), so they work from a plain checkout without installed metadata;
third-party packages add members by declaring an entry point in the group, e.g. in pyproject.toml::

    [project.entry-points."vfio_conform.backends"]
    tiny = "vc_tiny_backend:BACKEND"

A name is unique in its group: an entry point naming a built-in member with another target is
refused (ExtensionError), one naming the same target (the project's own declarations) is ignored.
Knowing the names never imports a member, so the profile schema can check names at load time.
"""
from __future__ import annotations

import dataclasses
import importlib
from importlib.metadata import entry_points


class ExtensionError(Exception):
    """A member that cannot be found, loaded, or that clashes with another of the same name."""


#: group -> (the entry_points function that read it, its entry points).
_DECLARED: dict[str, tuple[object, tuple]] = {}


def declared(group: str) -> tuple:
    """The entry points of `group`, read once per process: reading them scans the metadata of every
    installed distribution (a process installs no plugin into itself)."""
    source = entry_points
    hit = _DECLARED.get(group)
    if hit is None or hit[0] is not source:     # first read, or another reader (a test's stand-in)
        hit = _DECLARED[group] = (source, tuple(source(group=group)))
    return hit[1]


@dataclasses.dataclass
class Group:
    """One extension group: `name` is its entry-point group, `builtin` its own members."""

    name: str
    builtin: dict[str, str]
    _loaded: dict[str, object] = dataclasses.field(default_factory=dict, repr=False)

    def targets(self) -> dict[str, str]:
        """name -> 'module:attribute' for every member (built-in first, then entry points)."""
        found = dict(self.builtin)
        for ep in declared(self.name):
            if ep.name in found and found[ep.name] != ep.value:
                raise ExtensionError(f"{self.name}: {ep.name!r} is declared by {ep.value} and "
                                     f"{found[ep.name]}")
            found[ep.name] = ep.value
        return found

    def names(self) -> list[str]:
        return sorted(self.targets())

    def load(self, name: str):
        """The member object named `name` (imported once)."""
        if name in self._loaded:
            return self._loaded[name]
        targets = self.targets()
        if name not in targets:
            raise ExtensionError(f"unknown {self.name.rpartition('.')[2].rstrip('s')} {name!r} "
                                 f"(known: {', '.join(sorted(targets))})")
        module, _, attr = targets[name].partition(":")
        try:
            obj = importlib.import_module(module.strip())
            for part in attr.strip().split(".") if attr else ():
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise ExtensionError(f"{self.name}: cannot load {name!r} from {targets[name]}: {exc}") from exc
        if getattr(obj, "name", name) != name:
            raise ExtensionError(f"{self.name}: {targets[name]} is named {obj.name!r}, registered as {name!r}")
        self._loaded[name] = obj
        return obj

    def load_all(self) -> dict[str, object]:
        return {name: self.load(name) for name in self.names()}


#: Device backends (vfio_conform.backends.registry.Backend objects).
BACKENDS = Group("vfio_conform.backends", {
    "sim": "vfio_conform.backends.sim.backend:BACKEND",
    "kernel": "vfio_conform.backends.kernel.backend:BACKEND",
    "vfio-user": "vfio_conform.backends.vfio_user.backend:BACKEND",
})

#: Verify hooks (vfio_conform.verify.base.Verifier subclasses, instantiated per use).
VERIFY = Group("vfio_conform.verify", {
    "none": "vfio_conform.verify.base:NoVerify",
    "sim-regions": "vfio_conform.verify.sim_regions:SimRegions",
    "mtty-uart": "vfio_conform.verify.mtty_uart:MttyUart",
    "libvfio-user-sample": "vfio_conform.verify.libvfio_user_sample:LibvfioUserSample",
})

#: Report formats (vfio_conform.report.formats.ReportFormat objects).
REPORTS = Group("vfio_conform.reports", {
    "html": "vfio_conform.report.formats:HTML",
    "kcidb": "vfio_conform.report.kcidb:KCIDB",
})
