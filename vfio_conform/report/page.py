"""Static HTML page chrome shared by the report and the diff: inline CSS, no scripts, no URLs."""
from __future__ import annotations

import html

from .outcomes import ORDER, style

esc = html.escape

_CSS = """
body{font:14px/1.4 "DejaVu Sans",Arial,sans-serif;margin:24px;color:#1d2630;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:2px solid #dde3ea}
h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;margin:6px 0 12px}
th,td{border:1px solid #d5dbe1;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f3f5f8;font-weight:600}
table.ident td:first-child{color:#55606c;white-space:nowrap}
table.matrix td.cell{width:42px;height:30px;text-align:center;font-weight:700;color:#fff;padding:0}
table.matrix td.o-not-run{color:#777}
table.matrix th.corner{font-size:11px;color:#55606c}
table.matrix th.to{writing-mode:vertical-rl;transform:rotate(180deg);height:96px;font-size:12px}
table.matrix th.from{font-size:12px;white-space:nowrap}
table.matrix a{color:inherit;text-decoration:none;display:block;line-height:30px}
.legend span{display:inline-block;margin:2px 10px 2px 0}
.sw{display:inline-block;width:14px;height:14px;vertical-align:-2px;margin-right:4px;border:1px solid #0002}
.badge{display:inline-block;padding:1px 8px;border-radius:9px;color:#fff;margin-right:6px;font-weight:600}
pre{white-space:pre-wrap;margin:0;font:12px/1.35 "DejaVu Sans Mono",monospace;max-width:900px}
.muted{color:#6b7682}.bad{color:#d3302f;font-weight:700}.good{color:#2e9d4f;font-weight:700}
td.num{text-align:right}
.verdict{padding:9px 14px;margin:8px 0;border-radius:6px;font-size:16px;color:#fff;max-width:1100px}
.verdict b{font-size:18px;margin-right:8px;letter-spacing:.5px}.verdict a{color:#fff}
.v-conformant{background:#2e7d46}.v-nonconformant{background:#b3261e}.v-incomplete{background:#8a5a00}
.w-conformant{color:#2e7d46}.w-nonconformant{color:#b3261e}.w-incomplete{color:#8a5a00}
table.summary td{text-align:right}table.summary td:nth-child(-n+3){text-align:left}
"""
_CSS += "".join(f".o-{key}{{background:{style(key).color}}}\n" for key in ORDER)


def document(title: str, body: str) -> str:
    """A complete standalone HTML5 page."""
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)}</title><style>{_CSS}</style></head>\n<body>\n{body}\n</body></html>\n")


def badge(key: str, n: int | str) -> str:
    s = style(key)
    fg = "#1d2630" if key in ("skipped", "not-run") else "#fff"
    return f'<span class="badge o-{key}" style="color:{fg}" data-outcome="{key}">{esc(s.label)} {n}</span>'


def legend() -> str:
    items = "".join(f'<span><i class="sw o-{k}"></i>{esc(style(k).glyph or "·")} {esc(style(k).label)}</span>'
                    for k in ORDER)
    return f'<div class="legend">{items}</div>'


def table(head: list[str], rows: list[list[str]], cls: str = "") -> str:
    """A table from already-escaped cell HTML."""
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'
