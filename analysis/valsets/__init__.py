"""Curated validation sets: promote failing examples, commit immutable versions,
evaluate every model version on them, export and score them offline (:mod:`.sets`)."""

from analysis.valsets.sets import (
    Selection,
    ValidationSet,
    commit,
    create_set,
    diff,
    evaluate,
    export_set,
    history,
    list_sets,
    members,
    promote,
)

__all__ = [
    "Selection",
    "ValidationSet",
    "commit",
    "create_set",
    "diff",
    "evaluate",
    "export_set",
    "history",
    "list_sets",
    "members",
    "promote",
]
