"""The Overview's open alerts, at the top: light (the first page a server draws imports
it), the feed itself is on the Monitor page (:mod:`pages.parts._alert_views`)."""

from __future__ import annotations

import streamlit as st

from analysis.monitors.alerts import changes, list_alerts
from analysis.numbers import format_count
from pages.parts import _ui

STATE_ICONS = {
    "new": ":material/notifications_active:",
    "acknowledged": ":material/visibility:",
    "snoozed": ":material/snooze:",
    "resolved": ":material/check_circle:",
}


def open_alerts_banner(project_name: str) -> None:
    """The Overview's top: the open alerts, by change (most costly first), linking to the Monitor page."""
    alerts = [a for a in _ui.metadata(list_alerts, project_name) if a.is_open]
    if not alerts:
        return
    found = changes(alerts)
    with st.container(border=True):
        counted = f"**{format_count(len(alerts))} open alert{'s' if len(alerts) != 1 else ''}**"
        if len(found) < len(alerts):
            counted += f" **in {format_count(len(found))} change{'s' if len(found) != 1 else ''}**"
        st.markdown(counted)
        for change in found[:3]:
            more = f" (and {format_count(len(change.others))} more slices)" if change.others else ""
            st.markdown(f"{STATE_ICONS.get(change.lead.state, '')} {_ui.plain(change.lead.message)}{more}")
        st.page_link("pages/monitor.py", label="See the alerts on the Monitor page", icon=":material/monitoring:")
