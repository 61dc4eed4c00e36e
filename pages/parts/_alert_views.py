"""The Monitor page's alert feed and monitor list.

Each alert says what changed in words, its evidence and impact, and opens its slice and
days in Slices, Discover, or the Slices page's Promote view (its errors into a validation
set); a person acknowledges, snoozes or resolves it. The monitors are listed with the
budget that sets their alert level, and can be evaluated on the spot (as the daily job
does)."""

from __future__ import annotations

import getpass
from datetime import timedelta

import pandas as pd
import streamlit as st

from analysis.monitors.alerts import acknowledge, acknowledge_all, changes, list_alerts, resolve, resolve_all, snooze
from analysis.monitors.definitions import get_budget, list_monitors
from analysis.monitors.run import run_monitors
from analysis.monitors.words import rarity
from analysis.numbers import format_count, format_number, format_value, metric_title
from analysis.slices import Slice, parse_slice
from analysis.store.sql import in_transaction
from pages.parts import _ui
from pages.parts._alert_banner import STATE_ICONS
from pages.parts._writes import write

ERROR_KEY = "al_error"


def _in_one_transaction(action):
    """``action(con, project, ...)`` as one transaction: all of it is written, or nothing."""
    return lambda con, project, *args: in_transaction(con, lambda: action(con, project, *args))


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "someone"


def _slice(alert) -> Slice:
    return Slice() if alert.slice in ("all rows", "every row") else parse_slice(alert.slice)


def alert_feed(project_name: str) -> None:
    """Open alerts first, by impact; resolved ones after, folded away."""
    error = st.session_state.pop(ERROR_KEY, None)
    if error:
        st.error(_ui.plain(error))
    alerts = _ui.metadata(list_alerts, project_name)
    opened = [a for a in alerts if a.is_open]
    found = changes(alerts)
    st.subheader(f"Alerts ({format_count(len(opened))} open)")
    if not alerts:
        st.caption("No alert yet. Monitors alert only when the evidence of a change reaches the budget's level.")
    if len(found) < len(opened):
        st.caption(
            f"{format_count(len(opened))} open alerts in {format_count(len(found))} "
            f"change{'s' if len(found) != 1 else ''}: alerts that began the same day on the same figure are shown "
            "together, led by the slice where the change is concentrated (the others hold its rows)."
        )
    for change in found:
        _alert(project_name, change.lead, expanded=change is found[0], others=change.others)
    closed = [a for a in alerts if not a.is_open]
    if closed:
        with st.expander(f"Resolved alerts ({format_count(len(closed))})"):
            for alert in closed:
                st.markdown(f"{STATE_ICONS['resolved']} **{alert.alert_id}** · {_ui.plain(alert.message)}")


def _alert(project_name: str, alert, expanded: bool, others=()) -> None:
    title = (
        f"{alert.alert_id} · {alert.monitor} · {alert.state}"
        + (f" until {alert.snoozed_until}" if alert.state == "snoozed" else "")
        + f" · impact {format_number(alert.impact, 0)}"
        + (f" · and {format_count(len(others))} more of the same change" if others else "")
    )
    with st.expander(_ui.plain(title), expanded=expanded, icon=STATE_ICONS.get(alert.state)):
        st.markdown(_ui.plain(alert.message))
        a, b, c = st.columns(3)
        a.metric("Reference", _shown(alert, alert.reference))
        b.metric("Since the change began", _shown(alert, alert.value))
        c.metric("Impact", format_number(alert.impact, 0), help=_impact_help(alert), delta_color="off")
        _links(alert)
        _actions(project_name, alert)
        if others:
            _same_change(project_name, alert, others)


def _same_change(project_name: str, lead, others) -> None:
    """The change's other alerts, smaller moves in slices that hold its rows: listed, and
    acknowledged or resolved together with the lead."""
    st.markdown(f"**The same change in {format_count(len(others))} more slice{'s' if len(others) != 1 else ''}**")
    st.dataframe(
        pd.DataFrame(
            {
                "Alert": [a.alert_id for a in others],
                "Slice": [a.slice for a in others],
                "Reference": [_shown(a, a.reference) for a in others],
                "Since the change began": [_shown(a, a.value) for a in others],
                "Impact": [format_number(a.impact, 0) for a in others],
                "State": [a.state for a in others],
            }
        ),
        hide_index=True,
        width="stretch",
    )
    every = [lead.alert_id, *(a.alert_id for a in others)]
    key, n = f"al{lead.alert_id}", format_count(len(every))
    a, b = st.columns(2)
    if a.button(f"Acknowledge all {n}", key=f"{key}_ack_all"):
        done = f"{n} alerts acknowledged."
        write(project_name, _in_one_transaction(acknowledge_all), every, _who(), done=done, error_key=ERROR_KEY)
        st.rerun()
    if b.button(f"Resolve all {n}", key=f"{key}_resolve_all"):
        done = f"{n} alerts resolved."
        write(project_name, _in_one_transaction(resolve_all), every, _who(), done=done, error_key=ERROR_KEY)
        st.rerun()


def _shown(alert, value) -> str:
    if alert.kind == "volume":
        return f"{format_number(value, 0)} rows a day"
    if alert.kind == "drift":
        return format_number(value)
    return format_value(alert.metric, value)


def _impact_help(alert) -> str:
    return {
        "volume": "rows missing against the reference's rows a day",
        "drift": "rows of the day whose inputs drifted",
        "coverage": "rows left unlabeled beyond the reference's share",
    }.get(alert.kind, "rows affected × the size of the drop: about how many more rows went wrong")


def _links(alert) -> None:
    params = {
        "version": alert.version,
        "stage": alert.stage,
        "from": alert.since.isoformat(),
        "to": alert.last_period.isoformat(),
    }
    in_slices, in_discover = dict(params), dict(params)
    if _slice(alert).conditions:
        in_slices["slice"] = in_discover["within"] = alert.slice
    a, b, c = st.columns(3)
    a.page_link(
        "pages/slices.py", label="Open these days in Slices", icon=":material/filter_alt:", query_params=in_slices
    )
    b.page_link(
        "pages/discover.py",
        label="Find where they go wrong (Discover)",
        icon=":material/travel_explore:",
        query_params=in_discover,
    )
    # The Slices page's Promote view on this slice and these days: its errors into a validation set.
    c.page_link(
        "pages/slices.py",
        label="Promote these errors",
        icon=":material/playlist_add:",
        query_params={**in_slices, "view": "promote"},
    )


def _actions(project_name: str, alert) -> None:
    key = f"al{alert.alert_id}"
    a, b, c, d = st.columns([2, 2, 3, 2], vertical_alignment="bottom")
    if alert.state != "acknowledged" and a.button("Acknowledge", key=f"{key}_ack"):
        done = f"Alert {alert.alert_id} acknowledged."
        write(project_name, _in_one_transaction(acknowledge), alert.alert_id, _who(), done=done, error_key=ERROR_KEY)
        st.rerun()
    if b.button("Resolve", key=f"{key}_resolve"):
        done = f"Alert {alert.alert_id} resolved."
        write(project_name, _in_one_transaction(resolve), alert.alert_id, _who(), done=done, error_key=ERROR_KEY)
        st.rerun()
    until = c.date_input("Snooze until", alert.last_period + timedelta(days=7), key=f"{key}_until")
    if d.button("Snooze", key=f"{key}_snooze"):
        write(
            project_name,
            _in_one_transaction(snooze),
            alert.alert_id,
            until,
            _who(),
            done=f"Alert {alert.alert_id} snoozed until {until}.",
            error_key=ERROR_KEY,
        )
        st.rerun()


def monitor_list(project_name: str) -> None:
    """The project's monitors, the budget and the alert level it sets; evaluate them now."""
    monitors = _ui.metadata(list_monitors, project_name)
    budget = _ui.metadata(get_budget, project_name)
    label = f"Monitors ({format_count(len(monitors))})"
    with st.expander(label, expanded=False, icon=":material/tune:"):
        if not monitors:
            st.caption(
                "No monitor yet. Add them from the command line: `python -m analysis monitor add --project "
                f"{project_name} --auto` watches the headline metric of every saved slice."
            )
            return
        level = budget.threshold(len(monitors))
        st.caption(
            _ui.plain(
                f"Budget: at most {format_number(budget.false_alerts_per_month)} false alert(s) a month across these "
                f"{format_count(len(monitors))} monitors, so each alerts when its evidence reaches "
                f"{format_number(level, 0)}: a false alarm of one monitor {rarity(level)}."
            )
        )
        st.dataframe(
            pd.DataFrame(
                {
                    "Monitor": [m.name for m in monitors],
                    "Watches": [
                        f"{m.kind} {metric_title(m.metric) if m.kind != 'drift' else m.metric}" for m in monitors
                    ],
                    "Slice": [m.slice_.readable() or "every row" for m in monitors],
                    "Worse when": [m.direction for m in monitors],
                    "Tolerance": [format_number(m.tolerance) if m.tolerance else "" for m in monitors],
                    "Version": [
                        f"{m.version} ({m.stage})" if m.version and m.stage else m.version or "production"
                        for m in monitors
                    ],
                }
            ),
            hide_index=True,
            width="stretch",
        )
        if st.button("Evaluate the monitors now", icon=":material/play_arrow:", disabled=_ui.read_only()):
            with st.spinner("Evaluating every monitor on the days since its last run…"):
                result = write(project_name, _in_one_transaction(run_monitors), error_key=ERROR_KEY)
            if result is not None:
                st.session_state["sb_flash"] = (
                    f"{format_count(result.evaluated)} day(s) evaluated; "
                    f"{format_count(len(result.new_alerts))} new alert(s)."
                )
            st.rerun()
