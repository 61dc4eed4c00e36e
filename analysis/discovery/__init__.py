"""Automatic slice discovery: where does the model fail, found exactly.

:func:`find_slices` is SliceLine (Sagadeeva & Boehm, SIGMOD 2021) computed in
DuckDB, level by level with the paper's pruning; see :mod:`.sliceline`.
"""

from .sliceline import NULL_CODE, SliceLineResult, find_slices

__all__ = ["NULL_CODE", "SliceLineResult", "find_slices"]
