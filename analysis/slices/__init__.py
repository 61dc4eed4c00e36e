"""Slices: the slice as data and its one compiler to SQL (:mod:`.model`, stored as
:mod:`.json_types`), saved slices (:mod:`.saved`), a slice's metrics with intervals
(:mod:`.metrics`), metrics by every value of a feature (:mod:`.breakdown`), error buckets
(:mod:`.buckets`) and column profiles for building slices (:mod:`.column_profile`)."""

from analysis.slices.model import Condition, Slice, compile_slice, parse_slice, validate_slice

__all__ = ["Condition", "Slice", "compile_slice", "parse_slice", "validate_slice"]
