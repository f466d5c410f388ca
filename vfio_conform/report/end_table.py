"""The one table that ends `vfio-conform run` and `lab run`: a row per profile, then the report paths."""
from __future__ import annotations

from ..base.verdicts import Verdict
from .run_verdicts import TABLE_OUTCOMES, ProfileSummary, ReportPaths, overall

_PATH_LABELS = (("html", "HTML report"), ("junit", "JUnit"), ("allure", "Allure results"),
                ("json", "JSON summary"))


def render(profiles: list[ProfileSummary]) -> str:
    """The table, the session id(s) and the report paths (once if every profile shares them)."""
    if not profiles:
        return ""
    outcomes = list(TABLE_OUTCOMES)
    extra = sorted({k for p in profiles for k, n in p.counts.items() if n and k not in outcomes})
    outcomes += extra                           # e.g. `skipped`: shown only when something was
    head = ["profile", "device(s)", "kernel", *outcomes, "verdict", "run"]
    rows = [[p.profile, ", ".join(p.devices) or "-", p.kernel or "-",
             *(str(p.counts.get(o, 0)) for o in outcomes),
             p.verdict_text + (f" ({p.reason})" if p.reason else ""),
             f"#{p.run_id}" if p.run_id is not None else "-"] for p in profiles]
    numeric = set(range(3, 3 + len(outcomes)))
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(cells):
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    word = overall(profiles)
    parts = [f"{p.profile} {p.subset_text.removeprefix('subset ')}" for p in profiles if p.subset_text]
    head_word = (f"{Verdict.CONFORMANT.value} (subset: {', '.join(parts)})" if word is Verdict.CONFORMANT_SUBSET
                 else word.value)
    out = [f"vfio-conform summary: {head_word}", line(head),
           line(["-" * w for w in widths]), *(line(r) for r in rows)]
    sessions = list(dict.fromkeys(p.session for p in profiles if p.session))
    if sessions:
        out.append(f"session{'s' if len(sessions) > 1 else ''}: {', '.join(sessions)}")
    for label, attr in (("host", "host"), ("harness", "harness_build")):
        values = list(dict.fromkeys(getattr(p, attr) for p in profiles if getattr(p, attr)))
        if values:
            out.append(f"{label}: {', '.join(values)}")
    groups: dict[ReportPaths, list[str]] = {}
    for p in profiles:
        groups.setdefault(p.reports, []).append(p.profile)
    for paths, names in groups.items():
        if len(groups) > 1:
            out.append(f"reports of {', '.join(names)}:")
        width = max(len(label) for _, label in _PATH_LABELS) + 1
        for attr, label in _PATH_LABELS:
            value = getattr(paths, attr)
            out.append(f"  {label + ':':{width}} {value or '(not written)'}")
    return "\n".join(out) + "\n"
