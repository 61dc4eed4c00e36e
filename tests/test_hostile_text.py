"""Names and notes are inert wherever they are shown: a project, model version, feature
value, saved slice, validation set, report, block title or note holding Markdown
images, raw HTML, links and Streamlit directives shows as literal text in the app
(Overview, Slices, Validation sets, Compare, Reports, Present) and in the HTML export;
and read-only mode hides every write and refuses one at the store."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import duckdb
import numpy as np
import pytest
from conftest import SMALL_MAPPING, db_digest, small_predictions
from markdown_it import MarkdownIt
from test_app import app_on

from analysis import Store, get_project, ingest_predictions, parse_mapping
from analysis.reports import add_block, get_report, render_html
from analysis.slices import parse_slice
from analysis.slices.saved import save_slice
from analysis.store.access import ReadOnlyError, ReadOnlyStore
from analysis.valsets import create_set

IMAGE = "![b](http://127.0.0.1:9/x.png)"
HOSTILE = f"{IMAGE} <img src=http://127.0.0.1:9/y.png> [link](http://evil) :material/warning: :red[x]"
PROJECT = "shop " + HOSTILE
VERSION = "v " + HOSTILE
VALUE = "<img src=http://127.0.0.1:9/c.png>"
LINKED = '<a href="http://evil.example/">m1</a>'  # plotly draws this as a link in a chart
SLICE, SET, REPORT = "slice " + HOSTILE, "set " + HOSTILE, "report " + HOSTILE
NOTE = f"A **decision**. {HOSTILE}\n\n<div><img src=http://127.0.0.1:9/z.png></div>\n\n[ours](/slices?x=1)"


@pytest.fixture()
def hostile_db(tmp_path):
    """Every kind of user text holding the hostile string."""
    n = 200
    rows = small_predictions(n)
    i = np.arange(n)
    rows["label"] = i % 3 == 0
    rows["revenue"] = 1.0
    rows["model"] = np.where(i % 2 == 0, LINKED, VERSION)
    rows["country"] = np.where(i % 5 == 0, VALUE, rows["country"])
    store = Store(tmp_path / "hostile.duckdb")
    with store.write() as con:
        ingest_predictions(con, rows, project=PROJECT, mapping=parse_mapping(SMALL_MAPPING))
        project = get_project(con, PROJECT)
        save_slice(con, project, SLICE, parse_slice("country = NG"), "described as " + HOSTILE)
        create_set(con, project, SET, description="described as " + HOSTILE)
        add_block(con, project, REPORT, "note", {"text": NOTE}, title="note " + HOSTILE)
        add_block(con, project, REPORT, "headline", {}, title="headline " + HOSTILE)
    return store.path


def shown_texts(at) -> list[tuple[str, str]]:
    """(element type, Markdown source) of every element that Streamlit renders as Markdown:
    bodies, labels (metrics, buttons, widgets, expanders, popovers, tabs) and toasts."""
    out = []

    def strings(message, kind):
        for field, value in message.ListFields():
            if field.type == field.TYPE_MESSAGE:
                for item in [value] if hasattr(value, "ListFields") else value:  # one message or a list
                    strings(item, kind)
            elif field.name in ("body", "label") and isinstance(value, str):
                out.append((kind, value))

    def walk(node):
        proto = getattr(node, "proto", None)
        if proto is not None and getattr(node, "type", "") not in ("html", "plotly_chart", "dataframe"):
            strings(proto, node.type)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at.main)
    walk(at.sidebar)
    out += [("toast", t.value) for t in at.toast]
    return out


def sent(at) -> str:
    """Everything the elements send to the browser (every field of every element)."""
    out = []

    def walk(node):
        if getattr(node, "proto", None) is not None:
            out.append(str(node.proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at.main)
    walk(at.sidebar)
    return "\n".join(out)


def rendered(source: str) -> str:
    """The Markdown as a CommonMark renderer with raw HTML allowed makes it (the worst case)."""
    return MarkdownIt("commonmark", {"html": True}).render(source)


def assert_inert(at) -> str:
    """No Markdown body renders an image, a link or raw HTML, nor holds a Streamlit
    directive; the notes (st.html) hold no image and no other host. Returns every
    rendered text, unescaped, to look for the literal hostile strings."""
    assert not at.exception, at.exception
    seen = []
    for kind, source in shown_texts(at):
        page = rendered(source)
        assert "<img" not in page and "<a " not in page, (kind, source)
        assert ":material/warning:" not in source and ":red[" not in source, (kind, source)
        seen.append(html.unescape(page).replace("\u2060", ""))  # the word joiner that stops autolinks
    for element in at.get("html"):
        body = element.proto.body
        assert "<img" not in body and "127.0.0.1:9" not in body and "evil" not in body, body
        seen.append(body)
    return "\n".join(seen)


def test_user_text_shows_literally_on_every_page(monkeypatch, hostile_db):
    at = app_on(monkeypatch, hostile_db).run()
    text = assert_inert(at)  # Overview: the project's title, the version's card
    assert f"shop {IMAGE}" in text and f"v {IMAGE}" in text and "<img src=http://127.0.0.1:9/y.png>" in text
    assert ":material/warning: :red[x]" in text

    at.query_params["slice"] = f'country = "{VALUE}"'
    at.query_params["view"] = "saved"  # the Slices page's view with the saved slices
    at.switch_page("pages/slices.py").run()
    text = assert_inert(at)  # the slice's chips and heading, the saved slice and its description
    assert f'country = "{VALUE}"' in text
    assert SLICE in text and "described as " + HOSTILE in text

    at.switch_page("pages/validation-sets.py").run()
    text = assert_inert(at)
    assert SET in text and "described as " + HOSTILE in text

    at.switch_page("pages/compare.py").run()
    text = assert_inert(at)
    assert VERSION in text

    at.switch_page("pages/reports.py").run()
    text = assert_inert(at)
    assert "note " + HOSTILE in text and "headline " + HOSTILE in text
    notes = [e.proto.body for e in at.get("html")]
    assert len(notes) == 1 and "<strong>decision</strong>" in notes[0] and '<a href="/slices?x=1">' in notes[0]

    at.switch_page("pages/present.py").run()
    text = assert_inert(at)
    assert "report " + HOSTILE in text and "note " + HOSTILE in text and len(at.get("html")) == 1


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attributes = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes += [value or "" for _, value in attrs]


def test_the_html_export_holds_no_image_and_no_url_of_user_text(hostile_db):
    with Store(hostile_db).read() as con:
        report = get_report(con, get_project(con, PROJECT), REPORT)
    page = render_html(report)
    parsed = _Tags()
    parsed.feed(page)
    assert "img" not in parsed.tags and "<img" not in page
    assert not [a for a in parsed.attributes if "127.0.0.1:9" in a or "evil" in a]
    # The note loses its image, raw HTML and outside link whole; its text and own link stay.
    note = page[page.index('<div class="note">') :]
    note = note[: note.index("</div>")]
    assert "127.0.0.1:9" not in note and "evil" not in note and "<div><img" not in note
    assert "<strong>decision</strong>" in note and '<a href="/slices?x=1">ours</a>' in note
    # Names are escaped text: the report's title and block titles read literally.
    assert html.escape("report " + HOSTILE) in page and html.escape("headline " + HOSTILE) in page


WRITE_LABELS = {
    "Add",
    "Save",
    "Delete",
    "Up",
    "Down",
    "Remove",
    "Promote to the draft",
    "Create",
    "Add note",
    "Commit the draft as a new version",
    "Keep the new numbers",
    "Use this engine",
    "Save slice",
    "Save metric",
    "Save the criteria",
    "Delete report",
    "Ingest as offline predictions",
    "Save (a new revision if the name exists)",
}


def test_read_only_mode_hides_every_write_and_the_store_refuses_one(monkeypatch, hostile_db):
    monkeypatch.setenv("SLICEBOARD_READ_ONLY", "1")
    before = db_digest(hostile_db)
    at = app_on(monkeypatch, hostile_db).run()
    assert not at.exception
    assert not [e for e in at.sidebar.children.values() if getattr(e, "type", "") == "expander"]  # no engine panel
    labels = []
    for page in (
        "pages/overview.py",
        "pages/slices.py",
        "pages/discover.py",
        "pages/validation-sets.py",
        "pages/compare.py",
        "pages/reports.py",
        "pages/present.py",
    ):
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
        labels += [b.label for b in at.button] + [label for kind, label in shown_texts(at) if kind == "button"]
        assert not at.text_area and not at.get("popover"), page  # no note, no "Add to report"
        assert not [t for t in at.tabs if t.label == "Promote"]
        assert not [g for g in at.button_group if "Promote" in g.options]  # the Slices page's views
    assert labels and not set(labels) & WRITE_LABELS, set(labels) & WRITE_LABELS
    # The Import page is not in the navigation (its file alone stops at once in this mode).
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/import.py")
    assert db_digest(hostile_db) == before
    # The store the app uses in this mode refuses a write before opening the file, and
    # its reads are read-only connections.
    store = ReadOnlyStore(hostile_db)
    with pytest.raises(ReadOnlyError, match="read-only"):
        with store.write() as con:
            con.execute("CREATE TABLE x (a INTEGER)")
    with store.read() as con, pytest.raises(duckdb.Error):
        con.execute("CREATE TABLE x (a INTEGER)")
    assert db_digest(hostile_db) == before


def test_the_sidebar_never_sends_the_spark_token(monkeypatch, tmp_path):
    """The stored remote shows masked; the input for a new one is an empty password field,
    and submitting it empty keeps the stored remote, token included. The message of the
    unreachable server does not quote the token either."""
    pytest.importorskip("pyspark")
    from test_external import MAPPING, frame, write_lake

    from analysis.engines.settings import EngineSettings, get_settings, set_settings
    from analysis.ingest.external import attach_parquet

    token = "dapi0123SECRETtoken"
    remote = f"sc://127.0.0.1:9/;token={token}"
    write_lake(frame(n=300), tmp_path / "lake")
    store = Store(tmp_path / "spark.duckdb")
    with store.write() as con:
        attach_parquet(con, str(tmp_path / "lake"), project="lake", mapping=MAPPING.with_(version="model_version"))
        set_settings(con, get_project(con, "lake"), EngineSettings("spark", remote))
    at = app_on(monkeypatch, store.path).run()
    shown = "\n".join(source for _, source in shown_texts(at))
    assert token not in shown and token not in sent(at)
    assert "Cannot reach Spark Connect at 127" in shown  # the page's queries ask the unreachable server
    assert "token=\\*\\*\\*\\*" in shown  # sc://127.0.0.1:9/;token=****, escaped
    field = at.text_input(key="sb_engine_remote")
    assert field.value == "" and field.proto.type == field.proto.PASSWORD
    assert field.proto.default == "" and token not in field.proto.placeholder
    at.button(key="FormSubmitter:sb_engine_form-Use this engine").click().run()
    with store.read() as con:
        assert get_settings(con, get_project(con, "lake")) == EngineSettings("spark", remote)
    assert token not in sent(at)


@pytest.mark.parametrize(
    "note, kept, gone",
    [
        ("[x](//evil.example/p)", "x", "evil.example"),  # protocol-relative: another host
        ("[y](/\\evil.example/p)", "y", "evil.example"),  # a browser reads /\ as //
        ("<http://evil.example/p>", "http://evil.example/p", "href"),  # an autolink keeps its text only
        ("[r][ref]\n\n[ref]: http://evil.example/p", "r", "evil.example"),  # a reference link
        ("![i](data:image/png;base64,AAAA)", "i", "data:"),  # an inline image, even of data
        ("[ours](/slices?project=p#top)", '<a href="/slices?project=p#top">ours</a>', "http"),  # a link of the site
    ],
)
def test_a_note_links_only_within_the_site(note, kept, gone):
    from analysis.reports.html import note_html

    out = note_html(note)
    assert kept in out and gone not in out and "<img" not in out


def test_report_charts_show_names_without_markup(hostile_db):
    """A version named with plotly's HTML (<a href>) is a plain label in a report's charts,
    in the export and in the app (both draw ``inert_figure``)."""
    import json

    from analysis.compare.comparison import Side
    from analysis.reports.blocks import figures
    from analysis.reports.html import inert_figure

    with Store(hostile_db).write() as con:
        block = add_block(
            con, get_project(con, PROJECT), "charts", "series", {"baseline": Side(LINKED), "candidate": Side(VERSION)}
        )
    raw = [json.dumps(f.to_plotly_json(), default=str) for f in figures("series", block.snapshot)]
    assert raw and any('<a href=\\"http://evil.example/' in r for r in raw)  # plotly would draw a link
    for fig in map(inert_figure, figures("series", block.snapshot)):
        spec = json.dumps(fig.to_plotly_json(), default=str)
        assert "<a href" not in spec and "<img" not in spec and "&lt;a href" in spec
    with Store(hostile_db).read() as con:
        page = render_html(get_report(con, get_project(con, PROJECT), "charts"))
    import re

    specs = [
        json.dumps(json.loads(s))
        for s in re.findall(r'<script type="application/json" id="fig-\d+">(.*?)</script>', page, re.S)
    ]
    assert specs and not [s for s in specs if "<a href" in s] and [s for s in specs if "&lt;a href" in s]


@pytest.mark.parametrize(
    "text",
    [
        "![b](http://127.0.0.1:9/x.png)",
        "see https://evil.example/x",
        "www.evil.example",
        "write to me@evil.example",
        "mailto:me@evil.example",
        "HTTP://EVIL.EXAMPLE",
    ],
)
def test_urls_in_user_text_are_never_turned_into_links(text):
    """Streamlit's Markdown links bare URLs, www. names and e-mail addresses after reading
    escapes (seen in Chromium: an escaped model version still showed a link); the pattern
    is broken by an invisible word joiner, and the text still reads the same."""
    from test_app import literal

    from pages.parts._ui import WORD_JOINER, plain

    shown = plain(text)
    assert not re.search(r"(?i)[a-z]:?//|www\.|\w\\?@", shown.replace("\\:", ":"))
    assert literal(shown).replace(WORD_JOINER, "") == text


def test_chart_text_keeps_quotes_as_written():
    """Plotly reads &lt; &gt; &amp; in a label but shows &quot; as written (checked in
    Chromium): a slice such as `Region Name` = "Île-de-France" keeps its quotes, markup stays text."""
    from pages.parts._ui import chart_text

    assert chart_text('`Region Name` = "Île-de-France" <b>x</b> & y') == (
        '`Region Name` = "Île-de-France" &lt;b&gt;x&lt;/b&gt; &amp; y'
    )
