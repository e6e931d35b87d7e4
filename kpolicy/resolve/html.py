"""`kpolicy report --format html`: one self-contained page, settings x configs, with provenance.

Rows are kpolicy.resolve.review's, grouped by category; a small inline script (no network,
no external assets) filters them to differences or policy failures. `#diff`, `#fail` or
`#diff,fail` in the page's address preselects the filters.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Optional

from kpolicy.resolve.api import Resolution
from kpolicy.resolve.review import CATEGORIES, Cell, Row

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#1b1b1b;background:#fff}
h1{font-size:1.3em}
table{border-collapse:collapse;font-size:.9em}
th,td{border:1px solid #bbb;padding:.3em .6em;vertical-align:top;text-align:left}
thead th{background:#eee;position:sticky;top:0}
th.feature{font-family:monospace;background:#f7f7f7}
th.feature small{font-weight:400;color:#555}
tr.category th{background:#39495c;color:#fff;font-size:1.05em}
td.state{font-weight:600;min-width:8em}
td.on{background:#c8ecc8}
td.off{background:#f6d2d2}
td.word{background:#d6e4f7}
td.unbuilt{background:repeating-linear-gradient(45deg,#eee,#eee 6px,#ddd 6px,#ddd 12px);color:#555}
td.changed{outline:3px solid #e0a000;outline-offset:-3px}
td.policy{font-family:monospace;font-size:.85em;background:#fafafa}
.verdict{display:inline-block;margin-left:.4em;padding:0 .3em;border-radius:3px;font-size:.8em}
.verdict-pass{background:#2e7d32;color:#fff}
.verdict-fail{background:#c62828;color:#fff}
.verdict-waived{background:#8d6e00;color:#fff}
.verdict-not-applicable{background:#777;color:#fff}
details{font-weight:400;font-size:.85em;margin-top:.2em}
details ol{margin:.2em 0;padding-left:1.3em}
.legend span{display:inline-block;padding:.1em .5em;margin-right:.4em;border:1px solid #bbb}
.filters{margin:.6em 0}
.filters label{margin-right:1.2em}
""".strip()

# Hides rows the checked filters exclude, and category headings left with no visible row.
_SCRIPT = """
(function(){
var d=document.getElementById('only-diff'),f=document.getElementById('only-fail');
var want=(location.hash||'').slice(1).split(',');
if(want.indexOf('diff')>=0)d.checked=true;
if(want.indexOf('fail')>=0&&!f.disabled)f.checked=true;
function apply(){
 var shown=0,rows=document.querySelectorAll('#matrix tbody tr');
 var head=null,count=0;
 function close(){if(head)head.hidden=count===0;}
 for(var i=0;i<rows.length;i++){var r=rows[i];
  if(r.classList.contains('category')){close();head=r;count=0;continue;}
  var hide=(d.checked&&r.dataset.changed!=='true')||(f.checked&&r.dataset.failed!=='true');
  r.hidden=hide;if(!hide){count++;shown++;}}
 close();
 document.getElementById('shown').textContent=String(shown);
}
d.addEventListener('change',apply);f.addEventListener('change',apply);apply();
})();
""".strip()


def _cell_class(c: Cell) -> str:
    if c.value is None:
        return "absent"
    if not c.built:
        return "unbuilt"
    if c.value in ("on", "y"):
        return "on"
    if c.value in ("off", "n"):
        return "off"
    return "word"


def _cell(row: Row, c: Cell) -> str:
    classes = f"state {_cell_class(c)}" + (" changed" if row.changed else "")
    word = "absent" if c.value is None else c.value + ("" if c.built else " (not built)")
    if c.name != row.key:
        word += f" ({c.name})"
    verdict = ""
    attrs = ""
    if c.verdict is not None:
        verdict = (f'<span class="verdict verdict-{escape(c.verdict)}" '
                   f'title="{escape(c.verdict_why)}">{escape(c.verdict)}</span>')
        attrs = f' data-policy="{escape(c.verdict)}"'
    items = "".join(f"<li>{escape(s)}</li>" for s in c.steps)
    chain = f"<details><summary>why</summary><ol>{items}</ol></details>" if items else ""
    return (
        f'<td class="{classes}" data-feature="{escape(row.key)}" data-name="{escape(c.name)}" '
        f'data-state="{escape(c.value if c.value is not None else "absent")}" '
        f'data-built="{str(c.built).lower()}"{attrs} title="{escape(c.why)}">{escape(word)}'
        f"{verdict}{chain}</td>"
    )


def report_html(columns: Sequence[tuple[str, Resolution]], rows: Sequence[Row],
                policy: Optional[str] = None) -> str:
    """The matrix page of ROWS over COLUMNS (label, resolution): deterministic, no external
    assets; with POLICY (its name), a column of its requirements and a verdict per cell."""
    head = "".join(
        f'<th scope="col" title="{escape(res.config.path or "Kconfig defaults")}">'
        f"{escape(label)}<br>"
        f"<small>Linux {escape(res.model.version)} {escape(res.model.arch)}</small></th>"
        for label, res in columns
    )
    if policy is not None:
        head += f'<th scope="col" class="policy">policy {escape(policy)}</th>'
    span = len(columns) + 1 + (policy is not None)
    body = []
    for category, heading in CATEGORIES:
        here = [r for r in rows if r.category == category]
        if not here:
            continue
        body.append(f'<tr class="category" data-category="{category}">'
                    f'<th colspan="{span}" scope="rowgroup">{escape(heading)}</th></tr>')
        for r in here:
            aka = f"<br><small>also {escape(', '.join(r.names))}</small>" if r.names else ""
            cells = "".join(_cell(r, c) for c in r.cells)
            if policy is not None:
                cells += f'<td class="policy">{"<br>".join(escape(q) for q in r.requires)}</td>'
            body.append(
                f'<tr data-category="{category}" data-changed="{str(r.changed).lower()}" '
                f'data-failed="{str(r.failed).lower()}">'
                f'<th class="feature" scope="row">{escape(r.key)}{aka}</th>{cells}</tr>'
            )
    legend = (
        '<p class="legend"><span style="background:#c8ecc8">on</span>'
        '<span style="background:#f6d2d2">off</span><span style="background:#d6e4f7">setting</span>'
        '<span style="background:#ddd">not built</span>'
        '<span style="outline:3px solid #e0a000">differs between columns</span></p>'
    )
    disabled = "" if policy is not None else " disabled"
    filters = (
        '<p class="filters"><label><input type="checkbox" id="only-diff"> only differences'
        f'</label><label><input type="checkbox" id="only-fail"{disabled}> only policy failures'
        f'</label><span id="shown">{len(rows)}</span> of {len(rows)} rows shown</p>'
    )
    title = "Effective kernel policy" + (f" against {escape(policy)}" if policy else "")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>kpolicy report</title><style>{_STYLE}</style></head><body>"
        f"<h1>{title}</h1>{legend}{filters}"
        f'<table id="matrix"><thead><tr><th scope="col">setting</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
        "<p><small>Generated by kpolicy. Hover a cell for its reason; open “why” for the chain "
        "Kconfig default → config → command line → effective.</small></p>"
        f"<script>{_SCRIPT}</script></body></html>\n"
    )
