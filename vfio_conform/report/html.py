"""Render the conformance report: per profile identity, heat-map matrix, suite summary, failures."""
from __future__ import annotations

import time

from ..results import describe_reason
from . import consumers, summary
from .matrix import Matrix, build_matrix
from .outcomes import ORDER, shown, style
from .page import badge, document, esc, legend, table
from .runs import RunData


def render_report(runs: list[RunData], title: str = "vfio-conform conformance report") -> str:
    """The whole static page for one or more runs (one section per run/profile)."""
    toc = "".join(f'<li><a href="#run-{r.id}">{esc(r.profile)}</a> (run #{r.id})</li>' for r in runs)
    sections = "".join(_section(r) for r in runs)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    body = (f"<h1>{esc(title)}</h1><div class=\"muted\">generated {stamp}</div>"
            f"<ul>{toc}</ul>{legend()}{sections}")
    return document(title, body)


def _section(run: RunData) -> str:
    rows = summary.latest_rows(run.rows)
    counts = summary.counts(rows)
    badges = "".join(badge(k, counts[k]) for k in ORDER if counts.get(k))
    parts = [f'<section id="run-{run.id}" data-profile="{esc(run.profile)}">',
             f"<h2>{esc(run.profile)} — run #{run.id}</h2>", _status(run.meta),
             f"<div>{badges or '<span class=muted>no results recorded</span>'}</div>",
             _identity(run.meta), consumers.render_html(rows),
             "<h3>State transition matrix (FROM row, requested state column)</h3>",
             render_matrix(build_matrix(rows), run.id), "<h3>Per suite</h3>", _suites(rows),
             _failures(rows, run.id), _waivers(rows), _unused_waivers(run.waivers), _all_tests(rows),
             "</section>"]
    return "".join(parts)


def _identity(meta: dict) -> str:
    def when(t):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "—"
    items = [("driver", meta.get("driver")), ("devices", meta.get("devices")),
             ("backend", meta.get("backend")), ("kernel release", meta.get("kernel")),
             ("firmware", meta.get("firmware") or "unknown"),
             ("harness version", meta.get("harness_version")),
             ("profile hash", meta.get("profile_hash") or "not recorded"),
             ("host", meta.get("host")), ("session", meta.get("session")),
             ("started", when(meta.get("started"))), ("ended", when(meta.get("ended"))),
             ("status", meta.get("status")), ("reason", meta.get("reason")),
             ("command", meta.get("argv"))]
    return table(["identity", ""], [[esc(k), esc(str(v or "—"))] for k, v in items], "ident")


def _status(meta: dict) -> str:
    """A banner unless the run finished: its verdicts are partial (or the run is still going)."""
    status = meta.get("status") or "running"
    if status == "finished":
        return f'<p class="good run-status" data-status="{esc(status)}">run finished</p>'
    reason = meta.get("reason") or ""
    text = f"run {status}" + (f" ({reason}: {describe_reason(reason)})" if reason else "")
    return (f'<p class="bad run-status" data-status="{esc(status)}" data-reason="{esc(reason)}">'
            f"{esc(text)}: these results are not a complete verdict</p>")


def render_matrix(m: Matrix, run_id: int | str = "") -> str:
    """The heat map: one coloured cell per (FROM, TO) arc; hover text names the test and message."""
    if not m.cells:
        return '<p class="muted">no test_arc results in this run</p>'
    head = '<th class="corner">from \\ to</th>' + "".join(f'<th class="to">{esc(c)}</th>' for c in m.cols)
    out = [f'<table class="matrix" data-run="{run_id}"><thead><tr>{head}</tr></thead><tbody>']
    for frm in m.rows:
        out.append(f'<tr><th class="from">{esc(frm)}</th>')
        for to in m.cols:
            row = m.cells.get((frm, to))
            key = shown(row)
            tip = f"{frm} -> {to}: {style(key).label}"
            glyph = esc(style(key).glyph)
            if row is not None:
                tip += f"\n{row['test_id']}" + (f"\n{row['message']}" if row.get("message") else "")
                if row["outcome"] in ("fail", "infra-error", "known-issue"):
                    glyph = f'<a href="#t-{run_id}-{esc(row["test_id"], True)}">{glyph}</a>'
            out.append(f'<td class="cell o-{key}" data-from="{esc(frm)}" data-to="{esc(to)}" '
                       f'data-outcome="{key}" title="{esc(tip, True)}">{glyph}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _suites(rows: list[dict]) -> str:
    per = summary.by_suite(rows)
    keys = [k for k in ORDER if any(c.get(k) for c in per.values())]
    body = [[esc(s)] + [f'<span class="num">{c.get(k, 0)}</span>' for k in keys] + [str(sum(c.values()))]
            for s, c in sorted(per.items())]
    return table(["suite"] + [esc(style(k).label) for k in keys] + ["total"], body, "suites")


def _rule(rule_id: str) -> str:
    try:
        from ..model.spec import RULES
    except ImportError:  # pragma: no cover - the catalogue ships with the package
        RULES = {}
    text = RULES[rule_id].text if rule_id in RULES else ""
    return f"<b>{esc(rule_id or '—')}</b>" + (f'<br><span class="muted">{esc(text)}</span>' if text else "")


def _failures(rows: list[dict], run_id: int) -> str:
    fails = summary.failures(rows) + summary.known_issues(rows)
    if not fails:
        return '<h3>Failures</h3><p class="good">no failures</p>'
    body = [[f'<span id="t-{run_id}-{esc(r["test_id"], True)}">{esc(r["test_id"])}</span>',
             badge(shown(r), ""), _rule(r.get("rule") or ""),
             f"<pre>{esc(r.get('message') or '')}</pre>"
             + (f'<br>waiver: {esc(r["link"])}' if r.get("link") else "")] for r in fails]
    return f"<h3>Failures ({len(fails)})</h3>" + table(["test", "outcome", "spec rule", "message"],
                                                       body, "failures")


def _waivers(rows: list[dict]) -> str:
    stale = summary.stale_waivers(rows)
    if not stale:
        return ""
    body = [[esc(r["test_id"]), esc(r["link"])] for r in stale]
    return (f"<h3>Waivers that can be removed ({len(stale)})</h3>"
            + table(["test (passed, but waived in the profile)", "waiver link"], body, "stale"))


def _unused_waivers(uses: list) -> str:
    unused = [u for u in uses if u.unused]
    if not unused:
        return ""
    body = [[f"known_issues[{u.index}]", esc(u.test), esc(u.rule), str(u.matched), esc(u.link)]
            for u in unused]
    return (f'<h3>Waivers that waived nothing ({len(unused)})</h3>'
            + table(["waiver", "test pattern", "rule", "tests matched", "link"], body, "unused-waivers"))


def _all_tests(rows: list[dict]) -> str:
    body = [[esc(r["test_id"]), badge(shown(r), ""), f'{(r.get("duration") or 0):.3f}s',
             esc(r.get("rule") or "")] for r in rows]
    return (f"<details><summary>All {len(rows)} tests</summary>"
            + table(["test", "outcome", "duration", "rule"], body, "all") + "</details>")
