"""A report as one self-contained HTML file: words, tables and plotly charts, then the
pins (what each block shows and the data's fingerprint).

Nothing is fetched when the file opens. Plotly's JavaScript is inside the file,
gzip-compressed (4.8 MB becomes 1.4 MB) and unpacked by the browser
(``DecompressionStream``, in every current browser); a Content-Security-Policy
forbids any request besides the file itself. Only aggregates are written, never
rows. Notes are Markdown without raw HTML, images or links to other hosts
(:func:`note_html`, which the app uses too); every other text is escaped.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import shutil
import subprocess
import tempfile
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

import plotly.graph_objects as go
import plotly.io as pio
from markdown_it import MarkdownIt

from analysis.errors import ConfigError
from analysis.reports.kinds import kind_of
from analysis.reports.saved import Report
from analysis.reports.tables import Cell, Table
from analysis.store.paths import write_file, writing

CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:"
)
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fff}
header,main,footer{max-width:1100px;margin:0 auto;padding:0 24px}
header{padding-top:24px;border-bottom:1px solid #ddd} h1{margin:0 0 4px} .sub{color:#666;margin:0 0 16px}
section.block{padding:16px 0;border-bottom:1px solid #eee} h2{margin:8px 0}
ul.lines{font-size:1.15em;line-height:1.5} .chart{min-height:200px;margin:8px 0}
table{border-collapse:collapse;margin:8px 0;font-size:.9em} th,td{padding:4px 8px;border-bottom:1px solid #eee;
text-align:right} th{background:#f6f6f6} td.text,th.text{text-align:left}
.pass{color:#0072B2;font-weight:600;white-space:nowrap} .fail{color:#D55E00;font-weight:600;white-space:nowrap}
footer{color:#444;font-size:.85em;padding-bottom:40px} footer pre{white-space:pre-wrap;background:#f8f8f8;padding:8px}
.nochart{color:#a00} .scroll{overflow-x:auto}
"""
LOADER = """
(async function () {
  const charts = document.querySelectorAll("div.chart");
  try {
    const packed = Uint8Array.from(atob(document.getElementById("sb-plotly").textContent.trim()), c => c.charCodeAt(0));
    const stream = new Blob([packed]).stream().pipeThrough(new DecompressionStream("gzip"));
    (0, eval)(await new Response(stream).text());
    for (const div of charts) {
      const fig = JSON.parse(document.getElementById(div.dataset.figure).textContent);
      await Plotly.newPlot(div, fig.data, fig.layout,
                           {displaylogo: false, responsive: true, modeBarButtonsToRemove: ["toImage"]});
    }
    document.body.dataset.charts = "ready";
  } catch (err) {
    for (const div of charts) {
      div.innerHTML = '<p class="nochart">This browser could not draw the chart; the numbers are in the tables.</p>';
    }
    document.body.dataset.charts = "failed: " + err;
  }
})();
"""


@lru_cache(maxsize=1)
def _plotly_packed() -> str:
    from plotly.offline import get_plotlyjs

    return base64.b64encode(gzip.compress(get_plotlyjs().encode("utf-8"), compresslevel=9, mtime=0)).decode("ascii")


def is_local_link(href: str) -> bool:
    """A link within the page's own site (``/slices?...``, ``#block-3``): no scheme, no host,
    and nothing a browser would read as one (``//host``, ``/\\host``)."""
    parts = urlsplit(href)
    lowered = href.lower()
    return not (parts.scheme or parts.netloc or href.startswith("//") or "\\" in href or "%5c" in lowered)


def _keep_local_links(state) -> None:
    """A markdown-it core rule: raw HTML is dropped, and a link to another host (or an
    autolink) keeps its text only."""
    state.tokens = [t for t in state.tokens if t.type != "html_block"]
    for token in state.tokens:
        if token.type != "inline" or not token.children:
            continue
        kept, dropped = [], []
        for child in token.children:
            if child.type == "html_inline":
                continue
            if child.type == "link_open":
                drop = not is_local_link(child.attrGet("href") or "")
                dropped.append(drop)
                if drop:
                    continue
            elif child.type == "link_close" and dropped and dropped.pop():
                continue
            kept.append(child)
        token.children = kept


@lru_cache(maxsize=1)
def _note_renderer() -> MarkdownIt:
    # CommonMark; raw HTML is parsed (so that it can be dropped whole, its URLs too),
    # images are off (an image reads as its "!" and link text), no link to another host.
    md = MarkdownIt("commonmark", {"html": True}).disable("image")
    md.core.ruler.push("sb_local_links", _keep_local_links)
    return md


_TEMPLATES = {"hovertemplate", "texttemplate", "template"}  # written by Sliceboard and plotly, not by users


def _inert(value, key: str | None = None):
    if isinstance(value, str):
        # Plotly reads a little HTML in text (<a href>, <span style>): names show as written;
        # the line breaks Sliceboard puts in cell texts stay.
        return value if key in _TEMPLATES else html.escape(value, quote=False).replace("&lt;br&gt;", "<br>")
    if isinstance(value, dict):
        return {k: v if k in _TEMPLATES else _inert(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_inert(v, key) for v in value]
    if getattr(value, "dtype", None) is not None and value.dtype.kind in "OUS":  # numpy text arrays
        return [_inert(v, key) for v in value.tolist()]
    return value


def inert_figure(fig: go.Figure) -> go.Figure:
    """The figure with every text (titles, names, category labels, annotations) shown
    literally by plotly: no link or markup from a version, slice or set name."""
    return go.Figure(_inert(fig.to_plotly_json()))


def note_html(text: str) -> str:
    """A report note (Markdown) as safe HTML: headings, emphasis, lists, code and links
    within the site; raw HTML dropped; no image and no link to another host."""
    return _note_renderer().render(text or "")


def _cell(cell: Cell) -> str:
    """A table cell: the formatted text; a number keeps its full value in ``data-value``."""
    if cell.value is None or isinstance(cell.value, bool):
        return f'<td class="text {cell.tone}">{html.escape(cell.text)}</td>'
    return f'<td data-value="{cell.value!r}">{html.escape(cell.text)}</td>'


def table_html(table: Table) -> str:
    if not table.rows:
        return ""
    # A heading aligns as its column: text to the left, numbers to the right.
    first = table.rows[0]
    head = "".join(
        f'<th class="{"text" if i == 0 or first[i].value is None else ""}">{html.escape(h)}</th>'
        for i, h in enumerate(table.headings)
    )
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in table.rows)
    note = f'<p class="sub">{html.escape(table.note)}</p>' if table.note else ""
    return (
        f'<div class="scroll"><table class="{table.name}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>{note}"
    )


def tables(block_tables: list[Table]) -> str:
    """A block's tables as HTML (the same texts as the app's tables)."""
    return "".join(table_html(t) for t in block_tables)


def _pins(report: Report) -> str:
    parts = [
        "<h2>What this report shows</h2>",
        f"<p>Project <b>{html.escape(report.project)}</b>. Each block shows the numbers computed at the time "
        "written beside it, with these parameters and this data.</p>",
    ]
    for b in report.blocks:
        params = {k: v for k, v in b.params.items() if k != "text"}
        parts.append(
            f"<h3>{html.escape(b.title)}</h3><p>{html.escape(kind_of(b.kind).title)}, computed "
            f"{b.computed_at:%Y-%m-%d %H:%M} UTC</p>"
        )
        if params:
            parts.append(f"<pre>{html.escape(json.dumps(params, indent=1, default=str))}</pre>")
    if report.blocks:
        fp = report.blocks[-1].fingerprint
        parts.append("<h3>Data</h3><pre>" + html.escape(json.dumps(fp, indent=1)) + "</pre>")
    return "\n".join(parts)


def render_html(report: Report) -> str:
    """The report as one HTML document (see the module docstring)."""
    sections, scripts, n = [], [], 0
    for b in report.blocks:
        body = []
        kind = kind_of(b.kind)
        said = kind.lines(b.snapshot)
        if said:
            body.append('<ul class="lines">' + "".join(f"<li>{html.escape(x)}</li>" for x in said) + "</ul>")
        for fig in map(inert_figure, kind.figures(b.snapshot)):
            n += 1
            body.append(f'<div class="chart" data-figure="fig-{n}"></div>')
            spec = pio.to_json(fig, validate=False, pretty=False, engine="json").replace("</", "<\\/")
            scripts.append(f'<script type="application/json" id="fig-{n}">{spec}</script>')
        if kind.text:
            body.append(f'<div class="note">{note_html(b.snapshot["text"])}</div>')
        else:
            body.append(tables(kind.tables(b.snapshot)))
        sections.append(
            f'<section class="block" id="block-{b.block_id}" data-kind="{b.kind}">'
            f"<h2>{html.escape(b.title)}</h2>{''.join(body)}</section>"
        )
    exported = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    packed = f'<script id="sb-plotly" type="application/octet-stream">{_plotly_packed()}</script>' if n else ""
    loader = f"<script>{LOADER}</script>" if n else '<script>document.body.dataset.charts = "ready";</script>'
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(report.title)}</title><style>{STYLE}</style></head><body>"
        f'<header><h1>{html.escape(report.title)}</h1><p class="sub">Sliceboard report · project '
        f"{html.escape(report.project)} · exported {exported}</p></header>"
        f"<main>{''.join(sections)}</main><footer>{_pins(report)}</footer>"
        f"{''.join(scripts)}{packed}{loader}</body></html>\n"
    )


def write_html(report: Report, path: str | Path, *, force: bool = True, protect=()) -> Path:
    """The report as one HTML file, written by :func:`analysis.store.paths.write_file` (never
    through a link, never over a database, all or nothing; an existing file is replaced
    only with ``force``)."""

    return write_file(path, render_html(report), force=force, protect=protect)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise ConfigError("PDF export needs Chromium (or Chrome) on the PATH; the HTML export does not.")


def write_pdf(report: Report, path: str | Path, *, timeout: float = 120, force: bool = True, protect=()) -> Path:
    """The HTML, printed to PDF by headless Chromium (charts drawn first), written under
    the rules of :func:`write_html`."""

    chromium = _chromium()
    with writing(path, force=force, protect=protect) as target, tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(render_html(report), encoding="utf-8")
        done = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-pdf-header-footer",
                "--virtual-time-budget=15000",
                f"--print-to-pdf={target.resolve()}",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0 or not target.exists() or target.stat().st_size == 0:
            raise ConfigError(f"Chromium could not print the report: {done.stderr.strip()[-300:]}")
    return Path(path).expanduser()
