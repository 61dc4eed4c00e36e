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
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup

from analysis.errors import ConfigError
from analysis.reports.kinds import kind_of
from analysis.reports.saved import Report
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


@lru_cache(maxsize=1)
def _template():
    """The report's page (templates/report.html.j2), every value escaped unless marked safe."""
    env = Environment(
        loader=PackageLoader("analysis.reports", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,  # a name the template expects and the code forgot: an error, not a blank
        keep_trailing_newline=True,
    )
    env.filters["python_repr"] = repr  # a number's full value in data-value, as Python writes it
    return env.get_template("report.html.j2")


def render_html(report: Report) -> str:
    """The report as one HTML document (see the module docstring)."""
    blocks, figures = [], []
    for b in report.blocks:
        kind = kind_of(b.kind)
        try:
            kind.check(b.snapshot)
        except ConfigError as exc:  # the block says why in its place; the others are shown
            problem = {"id": b.block_id, "kind": b.kind, "title": b.title, "figures": [], "tables": []}
            blocks.append({**problem, "lines": [str(exc)], "note": None})
            continue
        shown = []
        for fig in map(inert_figure, kind.figures(b.snapshot)):
            spec = pio.to_json(fig, validate=False, pretty=False, engine="json").replace("</", "<\\/")
            figures.append({"n": len(figures) + 1, "spec": Markup(spec)})  # JSON in a script: raw text
            shown.append(figures[-1])
        blocks.append(
            {
                "id": b.block_id,
                "kind": b.kind,
                "title": b.title,
                "lines": kind.lines(b.snapshot),
                "figures": shown,
                "note": Markup(note_html(b.snapshot["text"])) if kind.text else None,
                "tables": [] if kind.text else kind.tables(b.snapshot),
            }
        )
    pins = [
        {
            "title": b.title,
            "kind": kind_of(b.kind).title,
            "computed": f"{b.computed_at:%Y-%m-%d %H:%M}",
            "params": json.dumps(params, indent=1, default=str) if params else "",
        }
        for b in report.blocks
        for params in [{k: v for k, v in b.params.items() if k != "text"}]
    ]
    return _template().render(
        report=report,
        csp=Markup(CSP),  # a constant with no double quote: written as it is
        style=Markup(STYLE),
        loader=Markup(LOADER),
        packed=_plotly_packed() if figures else "",
        exported=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        blocks=blocks,
        figures=figures,
        pins=pins,
        data=json.dumps(report.blocks[-1].fingerprint, indent=1) if report.blocks else "",
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
