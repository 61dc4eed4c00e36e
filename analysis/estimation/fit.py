"""Fitting the reference for one slice: the calibration its estimates use, and the
calibration error they carry.

The reference's labeled, scored rows are split into folds once. Candidates for a slice:
the scores as they are, isotonic calibration fitted on the whole reference, and, where
the slice has enough reference rows of each class, isotonic calibration fitted on the
slice's own rows. Each is scored on the slice's rows by its held-out Brier score (a row's
probability always comes from a fit that did not see it); the best wins, the simpler on a
tie. Global calibration is not calibration within a slice: a model calibrated overall can
be over-confident on a small group, and only the group's own rows say so.

The calibration error is then measured on the same held-out probabilities, for each
metric: the realized metric on the slice's reference rows minus its estimate from those
probabilities (the bias), and the sampling variance of that difference. An estimate's
interval adds ``bias² + variance`` to its own sampling variance, so a slice with few
reference rows, estimated with a calibration fitted elsewhere, gets a wider interval.
The same is measured per prediction (the mean of ``label - probability`` among rows
predicted positive, and among rows predicted negative): how far probabilities may be off
as a whole, which the labels of a period correct as they arrive (:mod:`.timeline`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analysis.errors import ConfigError
from analysis.estimation.calibration import (
    FITTERS,
    FOLDS,
    METHOD_WORDS,
    Calibrator,
    FoldCalibrators,
    brier,
    fold_counts,
    held_out,
)
from analysis.estimation.expected import EXPECTED_BY_TASK, Rows
from analysis.estimation.figures import MetricError
from analysis.estimation.outcomes import READINGS, Classes
from analysis.estimation.reference import ReferenceWindow
from analysis.estimation.regression import fit_regression
from analysis.slices import Slice, compile_slice
from analysis.store.project import Project
from analysis.store.sql import Sql, quote_ident

# Labeled reference rows a slice needs (in all, and of each class) to be calibrated on
# its own rows; fewer, and it borrows the whole reference's calibration.
MIN_SLICE_ROWS = 500
MIN_SLICE_CLASS = 25
# Quantiles of the reference's scores kept to tell how far a period's scores moved.
SCORE_QUANTILES = np.linspace(0.0, 1.0, 201)


@dataclass(frozen=True)
class Fit:
    """A slice's calibration on the reference, and the error it carries."""

    reference: ReferenceWindow
    slice_: Slice
    task: str
    calibrator: Calibrator
    within_slice: bool  # fitted on the slice's own reference rows (else on the whole reference)
    rows: int  # the slice's labeled, scored reference rows
    positives: int
    held_out_brier: dict[str, float]  # each candidate's held-out Brier score on the slice
    errors: dict[str, MetricError]  # per metric
    group_bias: dict[int, MetricError]  # per prediction: the mean of outcome - probability
    score_quantiles: np.ndarray = field(repr=False)
    notes: tuple[str, ...] = ()
    classes: Classes | None = None  # multiclass: the classes, and where wrong predictions go
    compared: str = "scores"  # what a period's shift is measured on (score_quantiles)

    @property
    def expected(self) -> dict:
        """The task's metrics as functions of probabilities (:mod:`.expected`)."""
        return EXPECTED_BY_TASK[self.task]

    def prior(self, group: int) -> float:
        """How far the probabilities of rows with this prediction may be off as a whole; a
        prediction the reference never made gets the largest of the others."""
        known = self.group_bias.get(group)
        if known is not None:
            return known.squared
        return max((g.squared for g in self.group_bias.values()), default=0.0)

    @property
    def method(self) -> str:
        return self.calibrator.method

    def describe(self) -> str:
        if self.method == "none":
            return "scores used as they are (calibrating them did not help on held-out folds)"
        where = "on the slice's own reference rows" if self.within_slice else "on the whole reference"
        return f"{METHOD_WORDS[self.method]} {where}"

    def to_dict(self) -> dict:
        return {
            **self.reference.to_dict(),
            "slice": self.slice_.readable() or "every row",
            "slice_rows": self.rows,
            "calibration": self.method,
            "calibrated_within_slice": self.within_slice,
            "calibration_words": self.describe(),
            "held_out_brier": self.held_out_brier,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class ReferenceRows:
    """The reference's labeled, scored rows, in a fixed order, with their folds: the rows as
    estimates read them (an entry may stand for several rows alike, ``rows.weights``),
    their 0/1 outcomes, the rows as their labels say (the realized figures), and each
    entry's slice membership. ``folds``: how many of each entry's rows are in each fold
    (entries × FOLDS); a fold per row (one row per entry) is taken too."""

    rows: Rows
    labels: np.ndarray
    in_slice: np.ndarray
    folds: np.ndarray
    known: Rows | None = None
    task: str = "binary"
    classes: Classes | None = None

    def __post_init__(self) -> None:
        if np.ndim(self.folds) == 1:
            object.__setattr__(self, "folds", fold_counts(self.folds, per_row=True))


def counted_rows_sql(
    project: Project, where: Sql, period: str | None = None, slice_: Slice | None = None, log: Sql | None = None
) -> Sql:
    """The rows ``where`` selects counted by score, prediction and label (as the task's
    reading takes them, :mod:`.outcomes`), and by period (``period``: SQL for a row's
    period) or slice membership (``slice_``) when asked: rows alike are one entry with
    their number (``w``), which every estimate weighs. Entries come by period, then in
    score order (nothing is sorted again in Python), in an order that is the same on every
    call and engine (folds are drawn on it). ``log``: a source standing for the log (such as
    the log as known at a moment, :func:`analysis.store.known.log_known_at`). Many slices'
    rows at once: :func:`analysis.estimation.many.slice_entries`."""
    keys = ["period"] * (period is not None) + ["score", "yhat", "y"] + ["in_slice"] * (slice_ is not None)
    return Sql.compose(
        "SELECT {keys}, count(*) AS w FROM ("
        "SELECT {period}score, {outcomes}{slice} FROM {log} "
        "WHERE {where} AND score IS NOT NULL AND prediction IS NOT NULL"
        ") AS scored GROUP BY {keys} ORDER BY {keys}",
        keys=", ".join(keys),
        period=f"{period} AS period, " if period is not None else "",
        outcomes=READINGS[project.task].select,
        slice=(
            Sql.compose(", CASE WHEN {slice} THEN 1 ELSE 0 END AS in_slice", slice=compile_slice(slice_, project))
            if slice_ is not None
            else ""
        ),
        log=log if log is not None else quote_ident(project.log_table),
        where=where,
    )


def check_estimable(con, project: Project, reference: ReferenceWindow) -> None:
    """Refuse, with a reason, a classifier version without scores."""
    scored = con.execute(
        *Sql.compose(
            "SELECT count(score) FROM {log} WHERE {scope}",
            log=quote_ident(project.log_table),
            scope=reference.scope.__class__.of(reference.version, reference.stage).to_sql(),
        )
    ).fetchall()[0][0]
    if not scored:
        raise ConfigError(
            f"Version {reference.version} ({reference.stage}) has no scores: estimates are computed from the "
            "model's scores, so log them (the mapping's score column)."
        )


def labeled_reference(reference: ReferenceWindow) -> Sql:
    """The reference window's labeled rows: what every fit of it reads."""
    return Sql.compose("{scope} AND label IS NOT NULL", scope=reference.scope.to_sql())


def check_outcomes(project: Project, reference: ReferenceWindow, labels: np.ndarray) -> None:
    """Refuse a reference without labeled rows, or whose labeled rows are all one outcome."""
    if len(labels) == 0:
        raise ConfigError(
            f"The reference window {reference.start} to {reference.end} has no labeled rows with a score "
            f"for {reference.version} ({reference.stage})."
        )
    if labels.min() == labels.max():
        raise ConfigError(
            f"Every labeled row of the reference window {reference.start} to {reference.end} "
            f"{READINGS[project.task].one_outcome(project, int(labels[0]))}: calibration needs both kinds of rows; "
            "choose a longer window."
        )


def reference_rows(con, project: Project, reference: ReferenceWindow, slice_: Slice) -> ReferenceRows:
    data = con.execute(*counted_rows_sql(project, labeled_reference(reference), slice_=slice_)).fetchnumpy()
    read = READINGS[project.task].read(data, presorted=True)
    check_outcomes(project, reference, read.outcomes)
    return ReferenceRows(
        read.rows,
        read.outcomes,
        np.asarray(data["in_slice"], int) == 1,
        fold_counts(read.rows.weights),
        read.known,
        project.task,
        read.classes,
    )


def fit_slice(con, project: Project, reference: ReferenceWindow, slice_: Slice = Slice(), method: str | None = None):
    """What ``slice_``'s estimates rest on, fitted on ``reference``: a classifier's
    calibration (:func:`fit_classifier`), a regression model's error models
    (:mod:`.regression`)."""
    if project.task not in FITS:
        raise ConfigError(f"Label-free estimates are not made for {project.task} tasks.")
    return FITS[project.task](con, project, reference, slice_, method)


def fit_classifier(
    con, project: Project, reference: ReferenceWindow, slice_: Slice = Slice(), method: str | None = None
) -> Fit:
    """Calibrate ``slice_`` on ``reference``. ``method`` forces ``"isotonic"`` or ``"none"``
    (fitted on the slice's rows when it has enough, else on the whole reference); by
    default the held-out folds choose."""
    if method is not None and method not in FITTERS:
        raise ConfigError(f"Calibration is {' or '.join(FITTERS)}, not {method!r}.")
    check_estimable(con, project, reference)
    ref = reference_rows(con, project, reference, slice_)
    if not ref.in_slice.any():
        raise nothing_to_calibrate(con, project, reference, slice_)
    return fit_rows(reference, slice_, ref, method)


def nothing_to_calibrate(con, project: Project, reference: ReferenceWindow, slice_: Slice) -> ConfigError:
    """Why a slice has no labeled reference rows (:func:`why_nothing_to_calibrate`)."""
    (predicted,) = slices_predicted(con, project, reference, [slice_])
    return why_nothing_to_calibrate(reference, slice_, predicted)


def why_nothing_to_calibrate(reference: ReferenceWindow, slice_: Slice, predicted: bool) -> ConfigError:
    """No prediction of the version is in the slice at all (say so, not that its reference
    is short), or none of its rows in the reference window is labeled."""
    if not predicted:
        return ConfigError(
            f"No prediction of {reference.version} ({reference.stage}) is in the slice {slice_.readable()}: "
            "check its values (the Slices page lists each column's)."
        )
    return ConfigError(
        f"The slice {slice_.readable()} has no labeled rows with a score in the reference window "
        f"{reference.start} to {reference.end}: there is nothing to calibrate its estimates on."
    )


def slices_predicted(con, project: Project, reference: ReferenceWindow, slices: list[Slice]) -> list[bool]:
    """Whether any prediction of the reference's version and stage, on any day, is in each
    slice (one query for them all)."""
    if not slices:
        return []
    found = con.execute(
        *Sql.compose(
            "SELECT {counts} FROM {log} WHERE {scope}",
            counts=Sql.join(
                ", ", [Sql.compose("count(CASE WHEN {s} THEN 1 END)", s=compile_slice(s, project)) for s in slices]
            ),
            log=quote_ident(project.log_table),
            scope=reference.scope.__class__.of(reference.version, reference.stage).to_sql(),
        )
    ).fetchall()[0]
    return [bool(n) for n in found]


def whole_calibrations(ref: ReferenceRows) -> dict[str, FoldCalibrators]:
    """Each calibration method fitted on the whole reference's rows: the same for every
    slice of them, so fitting many slices fits these once."""
    fitted = {name: fit for name, fit in FITTERS.items() if name != "none"}
    return {name: FoldCalibrators(fit, ref.rows.s, ref.labels, ref.folds) for name, fit in fitted.items()}


def fit_rows(
    reference: ReferenceWindow,
    slice_: Slice,
    ref: ReferenceRows,
    method: str | None = None,
    whole: dict[str, FoldCalibrators] | None = None,
    everything: bool | None = None,
) -> Fit:
    """:func:`fit_slice` on reference rows already read (the slice's rows are ``ref.in_slice``);
    ``whole``: :func:`whole_calibrations` of the whole reference, when already fitted (then
    ``ref`` may hold the slice's rows only, and ``everything`` says whether they are the
    whole reference's)."""
    whole = whole_calibrations(ref) if whole is None else whole
    mask = ref.in_slice
    scores, labels, folds = ref.rows.s[mask], ref.labels[mask], ref.folds[mask]
    rows = int(round(folds.sum()))
    positives = int(round(float(folds.sum(axis=1) @ labels)))
    own_rows = rows >= MIN_SLICE_ROWS and min(positives, rows - positives) >= MIN_SLICE_CLASS
    everything = bool(mask.all()) if everything is None else everything
    # Candidates: (probabilities held out per entry and fold, fitted on the slice's own rows), by name.
    as_they_are = np.repeat(np.clip(scores, 0.0, 1.0)[:, None], FOLDS, axis=1)
    candidates: dict[str, tuple[np.ndarray, bool]] = {"none": (as_they_are, False)}
    for name, fit in FITTERS.items():
        if name == "none":
            continue
        if own_rows and not everything:
            candidates[name] = (held_out(fit, scores, labels, folds), True)
        candidates[f"{name} (whole reference)"] = (whole[name].held_out(scores), False)
    scored = {name: brier(p, labels, folds) for name, (p, _) in candidates.items()}
    allowed = [n for n in candidates if method is None or n.split(" ")[0] == method]
    chosen = min(allowed, key=lambda n: (round(scored[n], 12), list(candidates).index(n)))
    probabilities, within = candidates[chosen]
    method_name = chosen.split(" ")[0]
    if within:
        calibrator = FITTERS[method_name](scores, labels, folds.sum(axis=1))
    else:
        calibrator = whole[method_name].every if method_name in whole else FITTERS[method_name](scores, labels)
    # Each entry's rows in each fold, with the probability held out for that fold.
    entry, fold = np.nonzero(folds > 0)
    slice_rows, known_rows = ref.rows.subset(mask), (ref.known or ref.rows).subset(mask)
    held_rows = slice_rows.subset(entry).with_weights(folds[entry, fold])
    held_known = known_rows.subset(entry).with_weights(folds[entry, fold])
    held_labels, held_p = labels[entry], probabilities[entry, fold]
    expected = EXPECTED_BY_TASK[ref.task]
    notes = []
    if not own_rows and not everything:
        notes.append(
            f"few reference rows in the slice ({rows:,}; {MIN_SLICE_ROWS:,} with {MIN_SLICE_CLASS} of each "
            "class calibrate it on its own): calibrated on the whole reference, with a wider interval"
        )
    return Fit(
        reference=reference,
        slice_=slice_,
        task=ref.task,
        calibrator=calibrator,
        within_slice=within,
        rows=rows,
        positives=positives,
        held_out_brier=scored,
        errors=measured_errors(expected, held_rows, held_known, held_labels, held_p),
        group_bias=group_bias(held_rows, held_labels, held_p),
        score_quantiles=np.quantile(scores, SCORE_QUANTILES, weights=folds.sum(axis=1), method="inverted_cdf"),
        notes=tuple(notes),
        classes=ref.classes,
    )


def measured_errors(
    metrics: dict, rows: Rows, known: Rows, labels: np.ndarray, probabilities: np.ndarray
) -> dict[str, MetricError]:
    out = {}
    for name, expected in metrics.items():
        estimate = expected(rows, probabilities)
        realized = expected(known, labels).value
        out[name] = MetricError(realized - estimate.value, estimate.variance(probabilities))
    return out


def group_bias(rows: Rows, labels: np.ndarray, probabilities: np.ndarray) -> dict[int, MetricError]:
    """Per prediction: the mean of ``label - probability`` over its rows, and that mean's
    sampling variance."""
    counts = rows.by_prediction(np.ones(len(rows)))
    residuals = rows.by_prediction(labels - probabilities)
    spread = rows.by_prediction(probabilities * (1 - probabilities))
    return {g: MetricError(residuals[g] / k, spread[g] / k**2) for g, k in counts.items()}


def fit_state(fit: Fit) -> dict:
    """A classifier's fit as plain numbers (JSON): kept with a monitor's frozen reference,
    so that later runs estimate without fitting again (:func:`fit_from_state`)."""
    c = fit.calibrator
    return {
        "calibrator": [c.method, c.x.tolist(), c.y.tolist(), c.levels.tolist(), c.counts.tolist()],
        "within_slice": fit.within_slice,
        "rows": fit.rows,
        "positives": fit.positives,
        "held_out_brier": {k: float(v) for k, v in fit.held_out_brier.items()},
        "errors": {k: [float(e.bias), float(e.variance)] for k, e in fit.errors.items()},
        "group_bias": [[int(g), float(e.bias), float(e.variance)] for g, e in fit.group_bias.items()],
        "score_quantiles": fit.score_quantiles.tolist(),
        "notes": list(fit.notes),
        "classes": None if fit.classes is None else [list(fit.classes.names), fit.classes.confusion.tolist()],
    }


def fit_from_state(reference: ReferenceWindow, slice_: Slice, task: str, state: dict) -> Fit:
    """The fit :func:`fit_state` kept."""
    method, x, y, levels, counts = state["calibrator"]
    classes = state["classes"]
    return Fit(
        reference=reference,
        slice_=slice_,
        task=task,
        calibrator=Calibrator(method, *(np.array(a, float) for a in (x, y, levels, counts))),
        within_slice=state["within_slice"],
        rows=state["rows"],
        positives=state["positives"],
        held_out_brier=state["held_out_brier"],
        errors={k: MetricError(*v) for k, v in state["errors"].items()},
        group_bias={g: MetricError(b, v) for g, b, v in state["group_bias"]},
        score_quantiles=np.array(state["score_quantiles"], float),
        notes=tuple(state["notes"]),
        classes=None if classes is None else Classes(tuple(classes[0]), np.array(classes[1], float)),
    )


FITS = {"binary": fit_classifier, "multiclass": fit_classifier, "regression": fit_regression}
