"""Automatic slice discovery: where is the model worse than it should be?

:func:`analysis.discovery.run.discover` ranks slices by errors beyond what the model's
own scores predict (the default), beyond another version's, or by plain error; see
:mod:`.expected` and :mod:`.fold` (near-duplicates folded into one entry).
:func:`find_slices` is SliceLine (Sagadeeva & Boehm, SIGMOD 2021) computed in
DuckDB, level by level with the paper's pruning, the plain-error ranking; see :mod:`.sliceline`.
"""

from analysis.discovery.sliceline import NULL_CODE, SliceLineResult, find_slices

__all__ = ["NULL_CODE", "SliceLineResult", "find_slices"]
