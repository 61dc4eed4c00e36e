"""The Overview's open alerts, at the top: light (the first page a server draws imports
it), the feed itself is on the Monitor page (:mod:`pages.parts._alert_views`)."""

from __future__ import annotations

import streamlit as st

from analysis.monitors.alerts import list_alerts
from analysis.numbers import format_count
from pages.parts import _ui

STATE_ICONS = {
    "new": ":material/notifications_active:",
    "acknowledged": ":material/visibility:",
    "snoozed": ":material/snooze:",
    "resolved": ":material/check_circle:",
}


def open_alerts_banner(project_name: str) -> None:
    """The Overview's top: the open alerts, most costly first, each linking to the Monitor page."""
    alerts = [a for a in _ui.metadata(list_alerts, project_name) if a.is_open]
    if not alerts:
        return
    with st.container(border=True):
        st.markdown(f"**{format_count(len(alerts))} open alert{'s' if len(alerts) != 1 else ''}**")
        for alert in alerts[:3]:
            st.markdown(f"{STATE_ICONS.get(alert.state, '')} {_ui.plain(alert.message)}")
        st.page_link("pages/monitor.py", label="See the alerts on the Monitor page", icon=":material/monitoring:")
