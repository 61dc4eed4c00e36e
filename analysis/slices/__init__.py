"""Slices: the slice as a predicate tree (:mod:`.model`, its JSON checked by
:mod:`.json_types`), read from its readable form (:mod:`.parse`) and compiled to SQL in
one place (:mod:`.compile`); saved slices (:mod:`.saved`), a slice's metrics with
intervals (:mod:`.metrics`), metrics by every value of a feature (:mod:`.breakdown`),
error buckets (:mod:`.buckets`), column profiles for building slices
(:mod:`.column_profile`), and many slices' rows from one scan (:mod:`.cells`)."""

from analysis.slices.compile import SliceColumns, compile_slice, compile_term, slice_columns, validate_slice
from analysis.slices.model import And, Condition, Not, Or, Slice, Term
from analysis.slices.parse import parse_slice

__all__ = [
    "And",
    "Condition",
    "Not",
    "Or",
    "Slice",
    "Term",
    "compile_slice",
    "compile_term",
    "parse_slice",
    "slice_columns",
    "SliceColumns",
    "validate_slice",
]
