"""Diff output: plain text for the terminal/nightly log and a static HTML page."""
from __future__ import annotations

from ..base.build import HarnessBuild
from .diff import Change, ProfileDiff
from .outcomes import REFUSED, STALE_WAIVER
from .page import badge, document, esc, table


def _run_label(run: dict | None) -> str:
    if run is None:
        return "(absent)"
    status = run.get("status") or "?"
    if run.get("reason"):
        status += f": {run['reason']}"
    return (f"run #{run['id']} [{status}] (kernel {run.get('kernel') or '?'}, driver "
            f"{run.get('driver') or '?'}, harness {run.get('harness_build') or run.get('harness_version') or '?'}, "
            f"host {run.get('host') or '?'})")


def baseline_note(d: ProfileDiff) -> str:
    new = d.new or {}
    return (f"baseline: the first run of {d.profile} on host {new.get('host') or '?'}; nothing before it "
            f"to compare with, so its results are the baseline for the next run's gate"
            + ("" if not d.unfinished else " (but it did not finish: it cannot be a baseline)"))


def harness_change(old: dict | None, new: dict | None) -> list[str]:
    """'OLD -> NEW (...)' when the two runs were made by different harness builds (nothing when
    either run predates the build identity): a changed outcome may then be the harness's doing."""
    a, b = (old or {}).get("harness_build") or "", (new or {}).get("harness_build") or ""
    if not a or not b or a == b:
        return []
    same = HarnessBuild.parse(a).content == HarnessBuild.parse(b).content
    return [f"{a} -> {b} ({'same suites and rule catalogue' if same else 'the suites or the rule catalogue differ: a changed outcome may come from the harness'})"]


def _sections(d: ProfileDiff) -> list[tuple[str, list[Change]]]:
    return [("new failures", d.new_failures), ("new infrastructure errors", d.new_infra_errors),
            ("fixed", d.fixed), ("changed outcomes", d.changed), ("appeared", d.appeared),
            ("disappeared", d.disappeared), ("waiver can be removed", d.stale_waivers)]


def verdict(diffs: list[ProfileDiff], allow_missing: bool = False, allow_no_verdict: bool = False) -> str:
    bad = [(d, d.problems(allow_missing, allow_no_verdict)) for d in diffs]
    bad = [(d, p) for d, p in bad if p]
    if not bad:
        return "no regression"
    word = "REGRESSION" if any(d.regression for d, _ in bad) else "NOT COMPARABLE"
    return f"{word}: " + ", ".join(f"{d.profile} ({'; '.join(p)})" for d, p in bad)


def render_text(diffs: list[ProfileDiff], allow_missing: bool = False,
                allow_no_verdict: bool = False) -> str:
    out = []
    for d in diffs:
        out.append(f"== {d.profile}: {_run_label(d.old)} -> {_run_label(d.new)}")
        if d.baseline:
            out.append(f"  {baseline_note(d)}")
        out += [f"  harness changed: {line}" for line in harness_change(d.old, d.new)]
        out += [f"  environment changed: {line}" for line in d.environment]
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
    out.append(verdict(diffs, allow_missing, allow_no_verdict))
    return "\n".join(out) + "\n"


def render_html(diffs: list[ProfileDiff], title: str = "vfio-conform diff",
                allow_missing: bool = False, allow_no_verdict: bool = False) -> str:
    body = [f"<h1>{esc(title)}</h1>"]
    v = verdict(diffs, allow_missing, allow_no_verdict)
    body.append(f'<p class="{"good" if v == "no regression" else "bad"}" id="verdict">{esc(v)}</p>')
    for d in diffs:
        body.append(f'<section data-profile="{esc(d.profile)}"><h2>{esc(d.profile)}</h2>'
                    f"<p>{esc(_run_label(d.old))} &rarr; {esc(_run_label(d.new))}</p>"
                    + (f'<p class="baseline">{esc(baseline_note(d))}</p>' if d.baseline else "")
                    + "".join(f'<p class="harness-change">harness changed: {esc(line)}</p>'
                              for line in harness_change(d.old, d.new))
                    + "".join(f'<p class="env-change">environment changed: {esc(line)}</p>'
                              for line in d.environment))
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
    return ("absent" if key is None else "pass(waived)" if key == STALE_WAIVER
            else "pass(refused)" if key == REFUSED else key)


def _cell(key: str | None) -> str:
    return badge(key, "") if key else '<span class="muted">absent</span>'


