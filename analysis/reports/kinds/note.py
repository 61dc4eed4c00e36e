"""A note: the user's words, in Markdown, between the numbers."""

from __future__ import annotations

from analysis.errors import ConfigError
from analysis.reports.kinds.base import BlockKind, Snapshot

MAX_CHARACTERS = 20_000


class NoteSnapshot(Snapshot):
    text: str


class Note(BlockKind):
    name = "note"
    title = "Note"
    snapshot_model = NoteSnapshot
    text = True

    def pin(self, con, project, view: dict) -> dict:
        text = str(dict(view).get("text", ""))
        if len(text) > MAX_CHARACTERS:
            raise ConfigError(f"A note holds at most {MAX_CHARACTERS:,} characters.")
        return {"text": text}

    def compute(self, con, project, params: dict, comparison=None) -> dict:
        return {"text": params["text"]}

    def numbers(self, snapshot: dict) -> dict[str, object]:
        return {"text": snapshot["text"]}
