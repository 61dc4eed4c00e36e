"""Label-free performance estimates: a recent period's metrics estimated from the model's
own scores, calibrated on a labeled reference window, per slice, with intervals that
include the calibration error measured on held-out folds, and combined with the labels
as they arrive.

Periods (:mod:`.periods`), the reference window (:mod:`.reference`), calibration
(:mod:`.calibration`), the binary metrics as functions of probabilities
(:mod:`.expected`)."""

from analysis.estimation.periods import GRANULARITIES, Period, period_start_sql
from analysis.estimation.reference import (
    ReferenceChoice,
    ReferenceWindow,
    get_reference_choice,
    resolve_reference,
    set_reference_choice,
    version_stage,
)

__all__ = [
    "GRANULARITIES",
    "Period",
    "period_start_sql",
    "ReferenceChoice",
    "ReferenceWindow",
    "get_reference_choice",
    "resolve_reference",
    "set_reference_choice",
    "version_stage",
]
