"""How a task's logged rows become what an estimate reads: the prediction, and a 0/1
outcome the scores are calibrated against (binary: the label is positive; multiclass: the
prediction is right, the score being the predicted class's confidence).

A multiclass estimate also needs where wrong predictions go: the reference's confusion
among wrong predictions (``P(true = c | predicted k, wrong)``, one row per predicted
class, smoothed by half a row toward every other class so that a class never wrong on the
reference is not sure to stay right). Each reading is one class in ``READINGS``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.estimation.expected import Rows


@dataclass(frozen=True)
class Classes:
    """The classes a multiclass fit knows, and how a wrong prediction of each spreads."""

    names: tuple[str, ...]
    confusion: np.ndarray  # C x C; row k: P(true = c | predicted k, wrong); the diagonal is 0

    def extended(self, seen) -> "Classes":
        """With classes first seen after the reference: a wrong prediction of a new class
        spreads evenly over the others, and no known class's errors go to it."""
        new = sorted(set(seen) - set(self.names))
        if not new:
            return self
        names = self.names + tuple(new)
        size = len(names)
        confusion = np.zeros((size, size))
        confusion[: len(self.names), : len(self.names)] = self.confusion
        for k in range(len(self.names), size):
            confusion[k] = 1.0 / (size - 1)
            confusion[k, k] = 0.0
        return Classes(names, confusion)


@dataclass(frozen=True)
class Reading:
    rows: Rows  # for estimates: a multiclass row's errors spread as on the reference
    outcomes: np.ndarray  # 1, 0, or -1 where the label has not arrived
    known: Rows  # a labeled row's errors go to its true class (the realized figure)
    classes: Classes | None = None


class BinaryReading:
    select = (
        "CASE WHEN prediction THEN 1 ELSE 0 END AS yhat, "
        "CASE WHEN label IS NULL THEN -1 WHEN label THEN 1 ELSE 0 END AS y"
    )

    def read(self, data: dict, classes: Classes | None = None, presorted: bool = False) -> Reading:
        rows = Rows(np.asarray(data["score"], float), np.asarray(data["yhat"], float), None, data.get("w"), presorted)
        return Reading(rows, np.asarray(data["y"], float), rows)

    def one_outcome(self, project, outcome: int) -> str:
        return f"is {(project.positive_label if outcome == 1 else project.negative_label)!r}"


class MulticlassReading:
    select = "prediction AS yhat, label AS y"

    def read(self, data: dict, classes: Classes | None = None, presorted: bool = False) -> Reading:
        predicted = np.asarray(data["yhat"], dtype=object)
        labels = np.asarray(data["y"], dtype=object)
        labeled = np.array([v is not None for v in labels], dtype=bool)
        seen = set(predicted) | set(labels[labeled])
        weights = data.get("w")
        classes = _confusion(predicted, labels, labeled, seen, weights) if classes is None else classes.extended(seen)
        index = {name: i for i, name in enumerate(classes.names)}
        k = np.array([index[v] for v in predicted], dtype=int)
        truth = np.array([index[v] if v is not None else -1 for v in labels], dtype=int)
        outcomes = np.where(labeled, (truth == k).astype(float), -1.0)
        scores = np.asarray(data["score"], float)
        spread = classes.confusion[k] if len(k) else np.zeros((0, len(classes.names)))
        known_spread = spread.copy()
        wrong = labeled & (truth != k)
        known_spread[labeled] = 0.0
        known_spread[np.flatnonzero(wrong), truth[wrong]] = 1.0
        return Reading(
            Rows(scores, k.astype(float), spread, weights, presorted),
            outcomes,
            Rows(scores, k.astype(float), known_spread, weights, presorted),
            classes,
        )

    def one_outcome(self, project, outcome: int) -> str:
        return "is predicted right" if outcome == 1 else "is predicted wrong"


def _confusion(predicted, labels, labeled, seen, weights=None) -> Classes:
    names = tuple(sorted(seen))
    index = {name: i for i, name in enumerate(names)}
    size = len(names)
    counts = np.zeros((size, size))
    rows = np.ones(len(predicted)) if weights is None else np.asarray(weights, float)
    for p, y, n in zip(predicted[labeled], labels[labeled], rows[labeled]):
        if p != y:
            counts[index[p], index[y]] += n
    smoothing = np.full((size, size), 0.5 / max(size - 1, 1))
    np.fill_diagonal(smoothing, 0.0)
    np.fill_diagonal(counts, 0.0)
    confusion = counts + smoothing
    totals = confusion.sum(axis=1, keepdims=True)
    return Classes(names, np.divide(confusion, totals, out=np.zeros_like(confusion), where=totals > 0))


READINGS = {"binary": BinaryReading(), "multiclass": MulticlassReading()}
