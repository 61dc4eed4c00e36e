"""Curated validation sets: pass criteria (:mod:`.criteria`), sets and their members
(:mod:`.sets`), promotion of failing examples (:mod:`.promote`), immutable versions
(:mod:`.versions`), every model version evaluated on them (:mod:`.evaluate`), and export
and offline re-scoring (:mod:`.rescore`)."""

from analysis.valsets.criteria import OPS, Criterion, parse_criterion
from analysis.valsets.evaluate import evaluate
from analysis.valsets.promote import MAX_HAND_PICKED, Promotion, Selection, preview_promotion, promote, remove_members
from analysis.valsets.rescore import Export, export_bytes, export_set, ingest_scores
from analysis.valsets.sets import (
    MAX_NAME,
    ValidationSet,
    create_set,
    delete_set,
    get_set,
    list_sets,
    members,
    version_number,
)
from analysis.valsets.versions import HASH_BATCH_ROWS, CommittedVersion, commit, content_hash, diff, history

__all__ = [
    "CommittedVersion",
    "Criterion",
    "Export",
    "HASH_BATCH_ROWS",
    "MAX_HAND_PICKED",
    "MAX_NAME",
    "OPS",
    "Promotion",
    "Selection",
    "ValidationSet",
    "commit",
    "content_hash",
    "create_set",
    "delete_set",
    "diff",
    "evaluate",
    "export_bytes",
    "export_set",
    "get_set",
    "history",
    "ingest_scores",
    "list_sets",
    "members",
    "parse_criterion",
    "preview_promotion",
    "promote",
    "remove_members",
    "version_number",
]
