"""Diff output: plain text for the terminal/nightly log and a static HTML page."""
from __future__ import annotations

from .diff import Change, ProfileDiff
from .outcomes import STALE_WAIVER
from .page import badge, document, esc, table


def _run_label(run: dict | None) -> str:
    if run is None:
        return "(absent)"
    return (f"run #{run['id']} (kernel {run.get('kernel') or '?'}, driver {run.get('driver') or '?'}, "
            f"harness {run.get('harness_version') or '?'})")


def _sections(d: ProfileDiff) -> list[tuple[str, list[Change]]]:
    return [("new failures", d.new_failures), ("new infrastructure errors", d.new_infra_errors),
            ("fixed", d.fixed), ("changed outcomes", d.changed), ("appeared", d.appeared),
            ("disappeared", d.disappeared), ("waiver can be removed", d.stale_waivers)]


def verdict(diffs: list[ProfileDiff]) -> str:
    bad = [d for d in diffs if d.regression]
    if not bad:
        return "no regression"
    return "REGRESSION: " + ", ".join(f"{d.profile} ({len(d.new_failures)} new failure"
                                      f"{'s' if len(d.new_failures) != 1 else ''})" for d in bad)


def render_text(diffs: list[ProfileDiff]) -> str:
    out = []
    for d in diffs:
        out.append(f"== {d.profile}: {_run_label(d.old)} -> {_run_label(d.new)}")
        for title, items in _sections(d):
            if not items:
                continue
            out.append(f"  {title} ({len(items)}):")
            for c in items:
                line = f"    {c.test_id}  {_word(c.old)} -> {_word(c.new)}"
                if c.new in ("fail", "infra-error") and (c.rule or c.message):
                    first = c.message.splitlines()[0][:160] if c.message else ""
                    line += f"  {first}" if first.startswith("[") else f"  [{c.rule}] {first}"
                out.append(line)
        out.append(f"  unchanged: {d.unchanged}")
    out.append(verdict(diffs))
    return "\n".join(out) + "\n"


def render_html(diffs: list[ProfileDiff], title: str = "vfio-conform diff") -> str:
    body = [f"<h1>{esc(title)}</h1>"]
    v = verdict(diffs)
    body.append(f'<p class="{"bad" if v.startswith("REGRESSION") else "good"}" id="verdict">{esc(v)}</p>')
    for d in diffs:
        body.append(f'<section data-profile="{esc(d.profile)}"><h2>{esc(d.profile)}</h2>'
                    f"<p>{esc(_run_label(d.old))} &rarr; {esc(_run_label(d.new))}</p>")
        for title_, items in _sections(d):
            if not items:
                continue
            rows = [[esc(c.test_id), _cell(c.old), _cell(c.new), esc(c.rule),
                     f"<pre>{esc(c.message[:2000])}</pre>" if c.new in ("fail", "infra-error") else ""]
                    for c in items]
            body.append(f"<h3>{esc(title_)} ({len(items)})</h3>"
                        + table(["test", "old", "new", "rule", "message"], rows, "changes"))
        body.append(f'<p class="muted">unchanged: {d.unchanged}</p></section>')
    return document(title, "".join(body))


def _word(key: str | None) -> str:
    return "absent" if key is None else "pass(waived)" if key == STALE_WAIVER else key


def _cell(key: str | None) -> str:
    return badge(key, "") if key else '<span class="muted">absent</span>'


