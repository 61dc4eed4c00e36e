"""The Reports page's blocks, in order: each drawn by its kind, with the controls that move,
rename, edit (a note's text) or remove it; every write runs in its button's callback."""

from typing import Callable

import streamlit as st

from analysis.reports import delete_block, edit_block, move_block
from analysis.reports.kinds import kind_of
from pages.parts import _block_view, _ui


def draw(report, name: str, write: Callable, *, editable: bool, confirm, ask: Callable, cancel: Callable) -> None:
    """Every block of ``report`` (named ``name``); ``write`` runs an engine write with a toast,
    ``ask``/``cancel`` the confirmation a removal needs (``confirm`` is the one pending)."""

    def remove_block(report: str, block_id: int, title: str) -> None:
        cancel()
        write(delete_block, report, block_id, done=f"Removed “{_ui.plain(title)}”.")

    def move(report: str, block_id: int, offset: int, title: str) -> None:
        where = "up" if offset < 0 else "down"
        write(move_block, report, block_id, offset, done=f"Moved “{_ui.plain(title)}” {where}.")

    def save(report: str, block_id: int, is_note: bool) -> None:
        title = st.session_state.get(f"rep_title_{block_id}")
        text = st.session_state.get(f"rep_text_{block_id}") if is_note else None
        write(edit_block, report, block_id, title=title, text=text, done="Saved.")

    for i, block in enumerate(report.blocks):
        with st.container(border=True):
            head = st.columns([4.5, 1, 1.2, 1.3])  # wide enough for "Down" and "Remove" beside their icons
            head[0].subheader(_ui.plain(block.title))
            head[0].caption(f"{kind_of(block.kind).title} · computed {block.computed_at:%Y-%m-%d %H:%M} UTC")
            if editable:
                head[1].button(
                    "Up",
                    key=f"rep_up_{block.block_id}",
                    disabled=i == 0,
                    icon=":material/arrow_upward:",
                    on_click=move,
                    args=(name, block.block_id, -1, block.title),
                )
                head[2].button(
                    "Down",
                    key=f"rep_down_{block.block_id}",
                    disabled=i == len(report.blocks) - 1,
                    icon=":material/arrow_downward:",
                    on_click=move,
                    args=(name, block.block_id, 1, block.title),
                )
                head[3].button(
                    "Remove",
                    key=f"rep_rm_{block.block_id}",
                    icon=":material/close:",
                    on_click=ask,
                    args=(("block", block.block_id),),
                )
                if confirm == ("block", block.block_id):
                    st.warning(
                        f"Remove “{_ui.plain(block.title)}” from this report? This cannot be undone.",
                        icon=":material/delete:",
                    )
                    a, b = st.columns([1, 5])
                    a.button(
                        "Remove it",
                        key=f"rep_rm_yes_{block.block_id}",
                        type="primary",
                        on_click=remove_block,
                        args=(name, block.block_id, block.title),
                    )
                    b.button("Keep it", key=f"rep_rm_no_{block.block_id}", on_click=cancel)
            _block_view.draw_block(block.kind, block.snapshot, key=f"rep_{block.block_id}")
            if not editable:
                continue
            text = kind_of(block.kind).text  # a note's words can be edited; other blocks only renamed
            with st.expander("Edit" if text else "Rename"):
                st.text_input("Title", block.title, key=f"rep_title_{block.block_id}")
                if text:
                    st.text_area("Text", block.snapshot["text"], key=f"rep_text_{block.block_id}")
                st.button(
                    "Save",
                    key=f"rep_save_{block.block_id}",
                    on_click=save,
                    args=(name, block.block_id, text),
                )
