"""Sliceboard: the navigation registry and the shared frame (database, project picker)."""

import streamlit as st

from pages.parts import _engine_ui, _ui, _warm_up, _writes

# The favicon is drawn locally: Streamlit fetches Material and emoji favicons
# from a CDN, and Sliceboard must work with no network beyond its own server.
st.set_page_config(page_title="Sliceboard", page_icon=_ui.favicon(), layout="wide")

# The Overview has its own address (/overview); the app's root is a hidden default page
# that opens it with the same query (Streamlit serves a default page only at the root).
OVERVIEW = st.Page("pages/overview.py", title="Overview", icon=":material/monitoring:", url_path="overview")
HOME = st.Page(lambda: None, title="Sliceboard", url_path="home", default=True, visibility="hidden")
PAGES = [
    HOME,
    OVERVIEW,
    st.Page("pages/slices.py", title="Slices", icon=":material/filter_alt:", url_path="slices"),
    st.Page("pages/discover.py", title="Discover", icon=":material/travel_explore:", url_path="discover"),
    st.Page(
        "pages/validation-sets.py", title="Validation sets", icon=":material/fact_check:", url_path="validation-sets"
    ),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:", url_path="compare"),
    st.Page("pages/monitor.py", title="Monitor", icon=":material/query_stats:", url_path="monitor"),
    st.Page("pages/reports.py", title="Reports", icon=":material/description:", url_path="reports"),
    st.Page("pages/present.py", title="Present", icon=":material/slideshow:", url_path="present"),
]
if not _ui.read_only():  # read-only mode (SLICEBOARD_READ_ONLY=1): no Import page, no engine settings
    PAGES.append(st.Page("pages/import.py", title="Import", icon=":material/upload:", url_path="import"))

page = st.navigation(PAGES)
if page is HOME:
    st.switch_page(OVERVIEW, query_params={k: st.query_params.get_all(k) for k in st.query_params})
if page.url_path != "present":  # Present collapses the sidebar; every other page shows it again
    st.set_page_config(initial_sidebar_state="auto")
st.sidebar.markdown("### :material/troubleshoot: Sliceboard")
with _ui.readable_errors():
    _ui.ensure_database()
    project = _ui.project_picker()
    if project and page.url_path != "present" and not _ui.read_only():  # a presentation shows no controls
        _engine_ui.engine_panel(project)
    st.sidebar.caption(f"Database: {_ui.plain(_ui.store().path)}" + (" · read-only" if _ui.read_only() else ""))
    _writes.show_flash()  # what the last write did, on whatever page comes next
    page.run()
_engine_ui.answered_caption()
_warm_up.warm_up()  # after the first page is drawn: the libraries the next pages need
