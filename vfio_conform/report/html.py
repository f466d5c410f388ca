"""Render the conformance report: verdicts and summary first, then per profile identity, heat-map
matrix, suite summary, failures grouped by rule and per test."""
from __future__ import annotations

import time
from collections import Counter

from ..base.exitcodes import Exit, verdict
from ..base.verdicts import Verdict
from ..results import describe_reason
from ..results.redact import public_command, redact_secrets
from ..results import rootcause
from . import consumers, outcome_counts
from .matrix import Matrix, build_matrix
from .outcomes import ORDER, RECORDED, shown, style
from .page import badge, document, esc, legend, table
from .runs import RunData

#: The verdict words of `vfio-conform run` (its exit codes, see base/exitcodes.py).
VERDICT_WORDS = {Exit.CONFORMANT: Verdict.CONFORMANT.value, Exit.NONCONFORMANT: Verdict.NON_CONFORMANT.value,
                 Exit.INCOMPLETE: Verdict.INCOMPLETE.value}


def run_verdict(run: RunData) -> str:
    """The run's verdict by the rules of the CLI's exit code: every recorded outcome, and whether
    the run finished."""
    code = verdict((r["outcome"] for r in run.rows), (run.meta.get("status") or "running") == "finished")
    return VERDICT_WORDS.get(code, Verdict.INCOMPLETE.value)


def subset_text(meta: dict) -> str:
    """'subset 24/231' when the run selected only part of its profile's suite, else ''."""
    selected, total = meta.get("selected_tests"), meta.get("suite_tests")
    if selected is None or (total is not None and selected >= total):
        return ""
    return f"subset {selected}/{total if total is not None else '?'}"


def verdict_text(run: RunData) -> str:
    """The verdict as printed: 'CONFORMANT (subset 24/231)' for a subset, never the bare word."""
    sub = subset_text(run.meta)
    return run_verdict(run) + (f" ({sub})" if sub else "")


def render_report(runs: list[RunData], title: str = "vfio-conform conformance report") -> str:
    """The whole static page for one or more runs: a verdict banner per profile, the summary
    table, the legend, then one section per run/profile."""
    sections = "".join(_section(r) for r in runs)
    multi = len({r.meta.get("kernel") or "" for r in runs}) > 1     # the banners name the kernel
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    body = (f"<h1>{esc(title)}</h1><div class=\"muted\">generated {stamp}</div>"
            f"{kernel_grid(runs)}{''.join(_banner(r, multi) for r in runs)}{_summary(runs)}{legend()}"
            f"{sections}")
    return document(title, body)


def kernel_grid(runs: list[RunData]) -> str:
    """The kernel x profile verdict grid of runs on more than one kernel ('' otherwise): each
    cell the verdict of the profile's newest run on that kernel, linked to its section."""
    from .kernels import release_key
    kernels = sorted({r.meta.get("kernel") or "" for r in runs}, key=release_key)
    if len(kernels) < 2:
        return ""
    newest: dict[tuple[str, str], RunData] = {}
    for run in runs:
        key = (run.profile, run.meta.get("kernel") or "")
        if key not in newest or run.id > newest[key].id:
            newest[key] = run
    body = []
    for profile in sorted({r.profile for r in runs}):
        cells = [esc(profile)]
        for kernel in kernels:
            run = newest.get((profile, kernel))
            if run is None:
                cells.append('<span class="muted">not run</span>')
                continue
            word, text, why = run_verdict(run), verdict_text(run), ""
            outcomes = {r["outcome"] for r in run.rows}
            if word == "CONFORMANT" and outcomes == {"not-supported"}:    # nothing ran there
                text = "NOT-SUPPORTED"
                why = f' title="{esc(run.rows[0].get("message") or "")}"'
            cells.append(f'<a href="#run-{run.id}" class="w-{word.lower().replace("-", "")}"{why} '
                         f'data-kernel="{esc(kernel)}" data-profile="{esc(profile)}">'
                         f"<b>{esc(text)}</b></a> #{run.id}")
        body.append(cells)
    head = ["profile", *(esc(k or "unknown kernel") for k in kernels)]
    return ("<h2>Verdict per kernel and profile</h2>"
            + table(head, body, "kernels").replace("<table", '<table id="kernel-matrix"', 1))


def _banner(run: RunData, kernel: bool = False) -> str:
    word = run_verdict(run)
    rows = outcome_counts.latest_rows(run.rows)
    fails = [r for r in run.rows if r["outcome"] == "fail"]
    if word == "NON-CONFORMANT":
        rules = {r.get("rule") or "" for r in fails}
        tests = {r["test_id"] for r in fails}
        why = (f"{len(tests)} test{'s' if len(tests) != 1 else ''} broke {len(rules)} spec "
               f"rule{'s' if len(rules) != 1 else ''}")
    elif word == Verdict.INCOMPLETE.value:
        status, reason = run.meta.get("status") or "running", run.meta.get("reason") or ""
        open_ = [k for k in ("infra-error", "skipped") if any(r["outcome"] == k for r in run.rows)]
        why = "; ".join(([f"run {status}" + (f" ({describe_reason(reason)})" if reason else "")]
                         if status != "finished" else [])
                        + [f"{sum(r['outcome'] == k for r in rows)} {k}" for k in open_])
        why += ": no complete verdict"
    else:
        why = "every test passed, or is not-supported, gated or a known-issue"
    cls = word.lower().replace("-", "")
    sub = subset_text(run.meta)
    if sub:
        why += (f"; only {sub.removeprefix('subset ')} tests of the profile's suite were selected: "
                "not a qualification")
    data = Verdict.CONFORMANT_SUBSET.value if sub and word == Verdict.CONFORMANT.value else word
    return (f'<div class="verdict v-{cls}" data-verdict="{data}" data-profile="{esc(run.profile)}">'
            f'<b>{esc(verdict_text(run))}</b> <a href="#run-{run.id}">{esc(run.profile)}</a> '
            f"(run #{run.id}{esc(', kernel ' + (run.meta.get('kernel') or '?')) if kernel else ''}): "
            f"{esc(why)}</div>")


def _summary(runs: list[RunData]) -> str:
    per = [(r, Counter(x["outcome"] for x in outcome_counts.latest_rows(r.rows))) for r in runs]
    keys = [k for k in RECORDED if k != "skipped" or any(c.get(k) for _, c in per)]
    body = [[f'<a href="#run-{r.id}">{esc(r.profile)}</a>', esc(r.meta.get("devices") or "—"),
             esc(r.meta.get("kernel") or "—"),
             *(f'<span class="num">{c.get(k, 0)}</span>' for k in keys),
             f'<b class="w-{run_verdict(r).lower().replace("-", "")}">{esc(verdict_text(r))}</b>',
             f"#{r.id}"] for r, c in per]
    return table(["profile", "devices", "kernel", *keys, "verdict", "run"], body, "summary")


def _section(run: RunData) -> str:
    rows = outcome_counts.latest_rows(run.rows)
    counts = outcome_counts.counts(rows)
    badges = "".join(badge(k, counts[k]) for k in ORDER if counts.get(k))
    parts = [f'<section id="run-{run.id}" data-profile="{esc(run.profile)}">',
             f"<h2>{esc(run.profile)} — run #{run.id}</h2>", _status(run.meta),
             f"<div>{badges or '<span class=muted>no results recorded</span>'}</div>",
             _root_causes(rows), _identity(run.meta), consumers.render_html(rows),
             "<h3>State transition matrix (FROM row, requested state column)</h3>",
             render_matrix(build_matrix(rows), run.id), "<h3>Per suite</h3>", _suites(rows),
             _by_rule(rows, run.id), _failures(rows, run.id), _infra_errors(rows, run.id),
             _known_issues(rows, run.id), _waivers(rows), _unused_waivers(run.waivers), _all_tests(rows),
             "</section>"]
    return "".join(parts)


def _identity(meta: dict) -> str:
    def when(t):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "—"
    items = [("driver", meta.get("driver")), ("devices", meta.get("devices")),
             ("backend", meta.get("backend")), ("kernel release", meta.get("kernel")),
             ("firmware", meta.get("firmware") or "unknown"),
             ("harness version", meta.get("harness_version")),
             ("harness build", meta.get("harness_build") or "not recorded"),
             ("profile hash", meta.get("profile_hash") or "not recorded"),
             ("host", meta.get("host")), ("session", meta.get("session")),
             ("started", when(meta.get("started"))), ("ended", when(meta.get("ended"))),
             ("status", meta.get("status")), ("reason", meta.get("reason")),
             ("selected", _selected(meta)),
             ("command", public_command(meta.get("argv") or ""))]
    return table(["identity", ""], [[esc(k), esc(str(v or "—"))] for k, v in items], "ident")


def _selected(meta: dict) -> str:
    selected, total = meta.get("selected_tests"), meta.get("suite_tests")
    if selected is None:
        return "not recorded"
    return f"{selected} of {total if total is not None else '?'} tests of the profile's suite"


def _status(meta: dict) -> str:
    """A banner unless the run finished: its verdicts are partial (or the run is still going)."""
    status = meta.get("status") or "running"
    sub = subset_text(meta)
    if status == "finished" and sub:
        return (f'<p class="bad run-status" data-status="{esc(status)}" data-subset="{esc(sub)}">'
                f"run finished, {esc(sub)}: only part of the profile's suite was selected, "
                "these results are not a qualification</p>")
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
    per = outcome_counts.by_suite(rows)
    keys = [k for k in ORDER if any(c.get(k) for c in per.values())]
    body = [[esc(s)] + [f'<span class="num">{c.get(k, 0)}</span>' for k in keys] + [str(sum(c.values()))]
            for s, c in sorted(per.items())]
    return table(["suite"] + [esc(style(k).label) for k in keys] + ["total"], body, "suites")


def _catalogue() -> dict:
    try:
        from ..model.spec import RULES
    except ImportError:  # pragma: no cover - the catalogue ships with the package
        return {}
    return RULES


def _rule(rule_id: str) -> str:
    rule = _catalogue().get(rule_id)
    text = rule.text if rule else ""
    return f"<b>{esc(rule_id or '—')}</b>" + (f'<br><span class="muted">{esc(text)}</span>' if text else "")


def _anchor(run_id: int, row: dict) -> str:
    return f"t-{run_id}-{esc(row['test_id'], True)}"


def _by_rule(rows: list[dict], run_id: int) -> str:
    """Spec violations grouped by the rule they break: how many, one example, the rule and its source."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        if r["outcome"] == "fail":
            groups.setdefault(r.get("rule") or "", []).append(r)
    if not groups:
        return ""
    body = []
    for rule_id, fails in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        rule = _catalogue().get(rule_id)
        ex = fails[0]
        body.append([f"<b>{esc(rule_id or '(no rule)')}</b>", f'<span class="num">{len(fails)}</span>',
                     f'<a href="#{_anchor(run_id, ex)}">{esc(ex["test_id"])}</a>',
                     esc(rule.text) if rule else '<span class="muted">not in the rule catalogue</span>',
                     (f"{esc(rule.source)}<br><span class=\"muted\">{esc(rule.level)}, {esc(rule.basis)}</span>"
                      if rule else "—")])
    n = sum(len(f) for f in groups.values())
    return (f"<h3>Failures by rule ({len(groups)} rule{'s' if len(groups) != 1 else ''}, {n} test"
            f"{'s' if n != 1 else ''})</h3>"
            + table(["rule", "failures", "example", "rule text", "source"], body, "by-rule"))


def _listing(title: str, cls: str, rows: list[dict], run_id: int, empty: str = "") -> str:
    if not rows:
        return empty
    body = [[f'<span id="{_anchor(run_id, r)}">{esc(r["test_id"])}</span>',
             badge(shown(r), ""), _rule(r.get("rule") or ""),
             f"<pre>{esc(redact_secrets(r.get('message') or ''))}</pre>"
             + (f'<br>waiver: {esc(r["link"])}' if r.get("link") else "")] for r in rows]
    return f"<h3>{esc(title)} ({len(rows)})</h3>" + table(["test", "outcome", "spec rule", "message"],
                                                          body, cls)


def _root_causes(rows: list[dict]) -> str:
    """The distinct defects behind the failures (results/rootcause.py), beside the test counts."""
    causes = rootcause.count(rows)
    if not causes:
        return ""
    failed = sum(c.failed for c in causes)
    body = [[_rule(c.rule), esc(c.key.split(" | ", 2)[-1]), esc(c.key.split(" | ", 2)[1] or "—"),
             f'<span class="num">{c.failed}</span>', f'<span class="num">{c.spoiled}</span>'] for c in causes]
    return (f"<h3>Root causes ({len(causes)} behind {failed} failing tests)</h3>"
            + table(["spec rule", "what the device did", "device", "failing tests",
                     "later teardowns that hit it"], body, "root-causes"))


def _failures(rows: list[dict], run_id: int) -> str:
    """Spec violations only (known issues and infrastructure errors have their own lists)."""
    fails = [r for r in rows if r["outcome"] == "fail"]
    return _listing("Failures", "failures", fails, run_id, '<h3>Failures</h3><p class="good">no failures</p>')


def _infra_errors(rows: list[dict], run_id: int) -> str:
    return _listing("Infrastructure errors (not blamed on the device)", "infra-errors",
                    [r for r in rows if r["outcome"] == "infra-error"], run_id)


def _known_issues(rows: list[dict], run_id: int) -> str:
    return _listing("Known issues (waived in the profile, with a link)", "known-issues",
                    outcome_counts.known_issues(rows), run_id)


def _waivers(rows: list[dict]) -> str:
    stale = outcome_counts.stale_waivers(rows)
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
