"""A page's state in its URL: a widget starts from the link's query parameter, and the
parameter follows the widget, so a copied link reproduces the view.

Widgets keep their values in session state under their ``key``; these helpers set that
value from the URL the first time the key is seen (or when the value it holds is no
longer valid, e.g. after the project changed), and write the widget's value back,
leaving a parameter out of the URL when it holds the default."""

from __future__ import annotations

from datetime import date

import streamlit as st


def start_choice(key: str, param: str, options: list, default) -> None:
    """Session state for a one-of widget: the URL's value if it is an option, else ``default``."""
    if st.session_state.get(key) in options:
        return
    wanted = st.query_params.get(param)
    st.session_state[key] = wanted if wanted in options else default


def start_number(key: str, param: str, low: float, high: float, default, cast=float) -> None:
    """Session state for a number input: the URL's value if it reads as a number in
    ``[low, high]``, else ``default`` (a value out of range is reset too)."""
    held = st.session_state.get(key)
    if held is not None and low <= held <= high:
        return
    try:
        wanted = cast(st.query_params.get(param))
    except (TypeError, ValueError):
        wanted = None
    st.session_state[key] = wanted if wanted is not None and low <= wanted <= high else default


def start_choices(key: str, param: str, options: list, default: list) -> None:
    """Session state for a several-of widget: the URL's repeated values that are options,
    else ``default``; picks that are no longer options are dropped."""
    if key in st.session_state:
        kept = [x for x in st.session_state[key] if x in options]
        if kept or not st.session_state[key]:
            st.session_state[key] = kept
            return
    wanted = [x for x in st.query_params.get_all(param) if x in options]
    st.session_state[key] = wanted or list(default)


def day(text) -> date | None:
    """A day written YYYY-MM-DD (a date passes through), or None."""
    if isinstance(text, date):
        return text
    try:
        return date.fromisoformat(str(text).strip()) if text else None
    except ValueError:
        return None


def start_dates(keys: tuple[str, str], params: tuple[str, str], first: date, last: date) -> None:
    """Session state for a from/to pair of day inputs (text, YYYY-MM-DD): the URL's days
    inside ``[first, last]``, else the whole range."""
    if all(k in st.session_state for k in keys):
        return
    start, end = (day(st.query_params.get(p)) for p in params)
    start = start if start and first <= start <= last else first
    end = end if end and first <= end <= last else last
    start, end = (start, end) if start <= end else (end, start)
    st.session_state[keys[0]], st.session_state[keys[1]] = start.isoformat(), end.isoformat()


def window(keys: tuple[str, str], first: date, last: date) -> tuple[date, date, list[str]]:
    """The from/to days the inputs hold, inside ``[first, last]`` and in order, and what
    was changed to get there (shown to the user)."""
    notes, out = [], []
    for key, fallback, what in ((keys[0], first, "From"), (keys[1], last, "To")):
        text = st.session_state.get(key)
        value = day(text)
        if value is None:
            notes.append(f"{what} {text!r} is not a day written YYYY-MM-DD; using {fallback.isoformat()}.")
            value = fallback
        elif not first <= value <= last:
            value = min(max(value, first), last)
            notes.append(f"{what} {text} is outside the logged days; using {value.isoformat()}.")
        out.append(value)
    start, end = out
    if start > end:
        start, end = end, start
        notes.append("From came after To; the two were swapped.")
    return start, end, notes


def window_input(container, keys: tuple[str, str], first: date, last: date) -> tuple[date, date, list[str]]:
    """The time window as two days in a form: applied on Enter (or Apply), both days at
    once, never while a day is typed. Text, not ``st.date_input``: in Streamlit 1.67 Enter
    in a typed date commits nothing. Returns :func:`window`'s days and notes."""
    with container.form(f"{keys[0]}_form", border=False, enter_to_submit=True):
        a, b, c = st.columns([4, 4, 3], vertical_alignment="bottom")
        a.text_input("From", key=keys[0], placeholder="YYYY-MM-DD", help=f"First day, from {first} on.")
        b.text_input("To", key=keys[1], placeholder="YYYY-MM-DD", help=f"Last day, up to {last}.")
        c.form_submit_button("Apply")
    return window(keys, first, last)


def keep(param: str, value, default=None) -> None:
    """Write ``value`` to the URL (a list as repeated parameters; a date as YYYY-MM-DD);
    at its default, leave the parameter out."""
    if value == default or value is None or value == []:
        st.query_params.pop(param, None)
        return
    if isinstance(value, date):
        value = value.isoformat()
    if isinstance(value, (list, tuple)):
        value = [str(v) for v in value]
    if st.query_params.get_all(param) != (value if isinstance(value, list) else [str(value)]):
        st.query_params[param] = value


def page_window(container, prefix: str, first: date, last: date, plain=str) -> tuple[date, date]:
    """A page's time window: From/To in a form drawn in ``container`` (keys ``<prefix>_from``
    and ``<prefix>_to``), started from the URL's ``?from=``/``?to=`` and written back to them
    (left out at the logged days' ends), so a link from another page opens its window. What
    was corrected is said under it (through ``plain``, which escapes typed text)."""
    keys = (f"{prefix}_from", f"{prefix}_to")
    start_dates(keys, ("from", "to"), first, last)
    start, end, notes = window_input(container, keys, first, last)
    for note in notes:
        st.caption(plain(note))
    keep("from", start, first)
    keep("to", end, last)
    return start, end


def slice_input(key: str, param: str, project, label: str, help: str | None = None, container=None):
    """A typed slice, started from the URL's ``?<param>=`` and kept there once it reads
    (a mistyped one is said, and never written to the URL); the slice, with no condition
    when the box is empty or its text does not read."""
    from analysis import SliceboardError
    from analysis.slices import Slice, parse_slice, validate_slice
    from pages.parts import _ui

    if key not in st.session_state:
        st.session_state[key] = st.query_params.get(param, "")
    text = (container or st).text_input(label, key=key, placeholder="e.g. region = east AND age < 30", help=help)
    typed = Slice()
    if text.strip():
        try:
            typed = validate_slice(parse_slice(text), project)
        except SliceboardError as exc:
            _ui.show_error(exc)
    keep(param, typed.readable() if typed.conditions else None)
    return typed
