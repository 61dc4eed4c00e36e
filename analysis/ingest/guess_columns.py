"""Which column is which in a predictions file, guessed from names and values, with the
reason for each guess (the Import page shows them; the user can change any of them).

Names first (``p_churn`` and ``churn_score`` read as scores, ``churned`` and ``is_fraud``
as labels, ``monthly_revenue`` as an outcome, ``predicted_minutes`` as a prediction),
checked against the values of a sample of rows (a score lies in [0, 1]; a classification
label has few values; an outcome is a number; an id is distinct on every row). Exact
names the mapping already knows (``prediction_id``, ``model_version``, ``label``) come
first, through :func:`analysis.ingest.mapping.guess_mapping`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import duckdb

from analysis.ingest.mapping import Mapping, guess_mapping
from analysis.ingest.sources import open_source
from analysis.store.sql import quote_ident

SAMPLE_ROWS = 10_000
MAX_CLASSES = 20  # a label with more distinct values than this, all numbers, is a regression target

_NUMERIC = re.compile(
    r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|FLOAT|REAL|"
    r"DOUBLE|DECIMAL|INT|NUMERIC)",
    re.IGNORECASE,
)
_TEMPORAL = re.compile(r"^(TIMESTAMP|DATE)", re.IGNORECASE)


@dataclass(frozen=True)
class ColumnProfile:
    """What a sample of one column holds."""

    name: str
    numeric: bool = False
    temporal: bool = False
    n_distinct: int = 0
    n_values: int = 0  # non-missing values in the sample
    min: float | None = None
    max: float | None = None
    integral: bool = False  # every value a whole number
    values: tuple[str, ...] = ()  # the distinct values, when there are at most three

    @property
    def unique(self) -> bool:
        return self.n_values > 1 and self.n_distinct == self.n_values

    @property
    def in_unit_interval(self) -> bool:
        return self.numeric and self.min is not None and 0 <= self.min and self.max <= 1


@dataclass
class ColumnGuess:
    """A mapping guessed for a file, and why: ``reasons`` maps a role (or ``outcomes``,
    ``features``, ``task``) to a sentence."""

    mapping: Mapping
    reasons: dict[str, str] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)  # id-like columns kept out of the features


def _words(name: str) -> list[str]:
    return [w for w in re.split(r"[^a-z0-9]+", name.strip().lower()) if w]


def _norm(name: str) -> str:
    return "_".join(_words(name))


def _score_name(name: str) -> str | None:
    n = _norm(name)
    if re.fullmatch(r"(p|prob|proba|probability|score)_.+", n):
        return "named like a probability (" + n.split("_")[0] + "_…)"
    if re.fullmatch(r".+_(score|prob|proba|probability|likelihood|propensity)", n):
        return "named like a score (…_" + n.rsplit("_", 1)[1] + ")"
    if n in {"score", "probability", "proba", "prob", "p", "confidence"}:
        return f"named {n}"
    return None


def _label_name(name: str, stem: str | None) -> tuple[int, str] | None:
    """How strongly a name reads as a label (lower is stronger), and why."""
    n = _norm(name)
    if n in {"label", "target", "y", "y_true", "ground_truth", "truth", "actual", "class", "outcome_label"}:
        return 0, f"named {n}"
    if stem and stem in _words(name):
        return 1, f"names what the score scores ({stem})"
    if stem and n.startswith(stem):
        return 1, f"names what the score scores ({stem})"
    if re.fullmatch(r"(is|has|was|did)_.+", n):
        return 2, f"named like a yes/no fact ({n.split('_')[0]}_…)"
    if re.fullmatch(r".+_(flag|label|target|true|actual)", n):
        return 2, f"named like a label (…_{n.rsplit('_', 1)[1]})"
    if re.fullmatch(r"(actual|true|observed)_.+", n):
        return 2, f"named like a label ({n.split('_')[0]}_…)"
    if re.fullmatch(r"[a-z]+ed", n) and n not in {"predicted", "scored", "created", "updated", "logged"}:
        return 3, f"named like an event that happened ({n})"
    return None


def _prediction_name(name: str) -> str | None:
    n = _norm(name)
    if re.fullmatch(r"(pred|predicted|prediction|y_pred|y_hat|yhat)(_.+)?", n) or re.fullmatch(
        r".+_(pred|prediction|predicted|estimate|forecast)", n
    ):
        return "named like a prediction (" + n + ")"
    return None


_MONEY = (
    "revenue",
    "profit",
    "loss",
    "cost",
    "costs",
    "amount",
    "spend",
    "spent",
    "price",
    "fee",
    "fees",
    "margin",
    "gmv",
    "sales",
    "income",
    "payout",
    "refund",
    "clicks",
    "conversions",
    "converted",
)


def _outcome_name(name: str) -> str | None:
    words = _words(name)
    hit = next((w for w in words if w in _MONEY), None)
    if hit is None:
        return None
    return f"a number named like a product outcome ({hit})"


def _id_name(name: str) -> bool:
    n = _norm(name)
    return n in {"id", "uuid", "key", "guid"} or n.endswith(("_id", "_uuid", "_key", "_guid"))


def _two_values(p: ColumnProfile) -> str:
    return ", ".join(p.values)


def guess_columns(profiles: list[ColumnProfile], *, base: Mapping | None = None) -> ColumnGuess:
    """Guess each role, the outcomes, the features and the task; ``base`` (an existing
    project's mapping) keeps every role it sets to a column of the file."""
    names = [p.name for p in profiles]
    by_name = {p.name: p for p in profiles}
    mapping = guess_mapping(names, base=base)
    mapping.outcomes = list(base.outcomes) if base is not None and base.outcomes else []
    reasons = {r: f"the column is named {c}" for r, c in mapping.role_columns().items()}
    if base is not None:
        reasons.update({r: "as in the project's mapping" for r, c in base.role_columns().items() if c in names})
    taken = set(mapping.role_columns().values())

    def take(role: str, col: str, why: str) -> None:
        setattr(mapping, role, col)
        taken.add(col)
        reasons[role] = why

    free = [p for p in profiles if p.name not in taken]
    if mapping.score is None:
        for p in free:
            why = _score_name(p.name)
            if why and p.in_unit_interval and p.n_distinct > 2:
                take("score", p.name, f"{why}, with values in [0, 1]")
                break
    if mapping.prediction is None:
        for p in profiles:
            why = _prediction_name(p.name)
            if why and p.name not in taken:
                take("prediction", p.name, why)
                break
    if mapping.label is None:
        stem = None
        if mapping.score and re.fullmatch(r"(p|prob|proba|probability|score)_.+", _norm(mapping.score)):
            stem = _norm(mapping.score).split("_", 1)[1]
        elif mapping.score and re.fullmatch(r".+_(score|prob|proba|probability)", _norm(mapping.score)):
            stem = _norm(mapping.score).rsplit("_", 1)[0]
        ranked = []
        for i, p in enumerate(profiles):
            hit = _label_name(p.name, stem)
            if hit is None or p.name in taken or p.n_values == 0:
                continue
            strength, why = hit
            if p.n_distinct == 2:
                why += f", with two values ({_two_values(p)})"
            elif not mapping.score and p.numeric and strength in (0, 2):
                why += ", a number"  # a regression target, named as one
            elif strength == 0 and p.n_distinct <= MAX_CLASSES:
                why += f", with {p.n_distinct} values"
            else:
                continue
            ranked.append((strength, i, p.name, why))
        if ranked:
            _, _, col, why = min(ranked)
            take("label", col, why)
    if mapping.timestamp is None:
        for p in profiles:
            if p.temporal and p.name not in taken and "label" not in _words(p.name):
                take("timestamp", p.name, "the first column holding dates and times")
                break
    if mapping.id is None:
        for p in profiles:
            if p.name not in taken and _id_name(p.name) and p.unique:
                take("id", p.name, "named like an id, and distinct on every row of the sample")
                break

    if mapping.example is None:
        for p in profiles:
            if p.name not in taken and _id_name(p.name) and not p.unique and p.n_distinct > 1:
                take(
                    "example",
                    p.name,
                    f"named like an id, and repeated ({p.n_distinct:,} distinct in "
                    f"{p.n_values:,} rows): the same input scored more than once",
                )
                break

    left_out = [
        p.name
        for p in profiles
        if p.name not in taken and _id_name(p.name) and p.n_distinct > 0.9 * p.n_values and not p.numeric
    ]
    if not mapping.outcomes:
        picked = []
        for p in profiles:
            why = _outcome_name(p.name)
            if why and p.numeric and p.name not in taken and p.name not in left_out:
                picked.append(p.name)
                reasons.setdefault("outcomes", "")
                reasons["outcomes"] += ("; " if reasons["outcomes"] else "") + f"{p.name}: {why}"
        mapping.outcomes = picked
    if mapping.features is None:
        mapping.features = [n for n in names if n not in taken and n not in mapping.outcomes and n not in left_out]
    if left_out:
        reasons["features"] = "left out, as ids rather than features: " + ", ".join(left_out)
    if mapping.task is None:
        mapping.task, reasons["task"] = _task(mapping, by_name)
    return ColumnGuess(mapping=mapping, reasons=reasons, left_out=left_out)


def _task(mapping: Mapping, by_name: dict[str, ColumnProfile]) -> tuple[str, str]:
    label = by_name.get(mapping.label) if mapping.label else None
    prediction = by_name.get(mapping.prediction) if mapping.prediction else None
    if mapping.score:
        return "binary", f"there is a score ({mapping.score})"
    target = label or prediction
    if target is None:
        return "binary", "nothing tells; binary is the default"
    if target.n_distinct == 2:
        return "binary", f"{target.name} has two values"
    if target.numeric and not (target.integral and target.n_distinct <= MAX_CLASSES):
        return "regression", f"{target.name} holds numbers with many values"
    return "multiclass", f"{target.name} has {target.n_distinct} values"


def profile_source(source, *, name: str | None = None, limit: int = SAMPLE_ROWS) -> list[ColumnProfile]:
    """A profile of each column of a file (or DataFrame) from its first ``limit`` rows."""
    con = duckdb.connect()
    try:
        src = open_source(con, source, name=name, view="sb_guess")
        con.execute(f"CREATE TEMP TABLE sb_sample AS SELECT * FROM {quote_ident(src.view)} LIMIT {int(limit)}")
        out = []
        for col in src.columns:
            kind = str(src.types.get(col, ""))
            q = quote_ident(col)
            # A CSV's view holds text; the types are what DuckDB's sniffer saw.
            numeric, temporal = bool(_NUMERIC.match(kind)), bool(_TEMPORAL.match(kind))
            value = f"TRY_CAST({q} AS DOUBLE)" if numeric else "NULL::DOUBLE"
            n_distinct, n_values, lo, hi, integral = con.execute(
                f"SELECT count(DISTINCT {q}), count({q}), min({value}), max({value}), "
                f"coalesce(bool_and({value} = floor({value})), false) FROM sb_sample"
            ).fetchall()[0]
            values = ()
            if n_distinct <= 3:
                values = tuple(
                    str(v)
                    for (v,) in con.execute(
                        f"SELECT DISTINCT {q}::VARCHAR AS v FROM sb_sample WHERE {q} IS NOT NULL ORDER BY v"
                    ).fetchall()
                )
            out.append(
                ColumnProfile(
                    col,
                    numeric=numeric,
                    temporal=temporal,
                    n_distinct=int(n_distinct),
                    n_values=int(n_values),
                    min=lo,
                    max=hi,
                    integral=bool(integral),
                    values=values,
                )
            )
        return out
    finally:
        con.close()


def guess_source(source, *, name: str | None = None, base: Mapping | None = None) -> ColumnGuess:
    """:func:`guess_columns` on a file's first rows."""
    return guess_columns(profile_source(source, name=name), base=base)
