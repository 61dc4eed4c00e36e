"""Class labels and stages: map the distinct raw values of a column once.

Rather than normalizing every row in SQL, the few distinct raw values of a
label, prediction or stage column are read once, normalized in Python, and
turned into a ``CASE WHEN raw IN (...) THEN ...`` expression with bound values.
"""

from __future__ import annotations

import math

import duckdb

from analysis.errors import ConfigError, IngestError
from analysis.ingest.mapping import normalize_class_value, parse_mapping
from analysis.ingest.sources import Source
from analysis.store.sql import quote_ident

MAX_MAPPED_VALUES = 500


def distinct_raw_values(
    con: duckdb.DuckDBPyConnection, src: Source, column: str, limit: int = MAX_MAPPED_VALUES
) -> list | None:
    """Distinct non-null raw values of a column, or None if there are more than ``limit``."""
    rows = con.execute(
        f"SELECT DISTINCT {quote_ident(column)} FROM {quote_ident(src.view)} "
        f"WHERE {quote_ident(column)} IS NOT NULL LIMIT {int(limit) + 1}"
    ).fetchall()
    if len(rows) > limit:
        return None
    return [r[0] for r in rows]


def normalized(raw) -> str | None:
    if isinstance(raw, float) and math.isnan(raw):
        return None
    return normalize_class_value(raw) or None


def mapped_case(column: str, mapping: dict, out_type: str) -> tuple[str, list]:
    """``CASE WHEN col IN (...) THEN out ... END`` for {raw value: output value}.

    Raw values that map to None are left out, so they become NULL.
    """
    by_out: dict = {}
    for raw, out in mapping.items():
        if out is not None:
            by_out.setdefault(out, []).append(raw)
    if not by_out:
        return f"CAST(NULL AS {out_type})", []
    parts, params = [], []
    for out, raws in by_out.items():
        parts.append(f"WHEN {quote_ident(column)} IN ({', '.join('?' for _ in raws)}) THEN CAST(? AS {out_type})")
        params += list(raws) + [out]
    return "CASE " + " ".join(parts) + " END", params


# Binary class pairs recognised without a positive_label: (positive, negative).
CONVENTIONAL_PAIRS = (("true", "false"), ("1", "0"), ("yes", "no"), ("1", "-1"))


def settled_classes(
    stored: tuple[str | None, str | None], given: tuple[str | None, str | None], *, project: str
) -> tuple[str | None, str | None]:
    """(positive, negative) known before reading the data: the project's stored classes,
    completed by the ones a mapping or caller names (in any form: ``1``, ``"+1"``,
    ``1.0`` are one class); a contradiction is refused."""
    out = []
    for role, have, named in zip(("positive", "negative"), stored, (normalized(v) for v in given)):
        if have is not None and named is not None and have != named:
            raise ConfigError(
                f"Project {project!r} has the {role} class {have!r}; {role}_label {named!r} contradicts it."
            )
        out.append(have if have is not None else named)
    if out[0] is not None and out[0] == out[1]:
        raise ConfigError(
            f"positive_label and negative_label name the same class ({out[0]!r}); a binary "
            "task has two different classes."
        )
    return out[0], out[1]


def _listed(values) -> str:
    shown = [repr(v) for v in sorted(values)]
    return ", ".join(shown[:10]) + (f" and {len(shown) - 10} more" if len(shown) > 10 else "")


def resolve_binary_classes(
    values: list[str], positive: str | None, negative: str | None, *, source: str, columns: list[str] = ()
) -> tuple[str | None, str | None]:
    """Decide the positive and negative class names of a binary task.

    ``values`` are the normalized class values of the input; ``positive`` and
    ``negative`` what is known (named in the mapping or stored), None if not yet.
    A class that is not named is inferred when the data holds exactly one other value
    (or follows a convention: true/false, 1/0, yes/no, 1/-1); it stays None while
    the data has not shown it. Values beyond two classes are refused, named.
    """
    vs = set(values)
    where = (
        f"column {columns[0]!r}"
        if len(columns) == 1
        else "columns " + " and ".join(repr(c) for c in columns)
        if columns
        else "the input"
    )
    column = columns[0] if columns else None
    if positive is None and negative is None:
        if not vs:  # no class values yet (scores only, labels to come): decide when they arrive
            return None, None
        for pos, neg in CONVENTIONAL_PAIRS:
            if vs <= {pos, neg}:
                positive = pos
                break
        else:
            if len(vs) > 2:
                raise IngestError(
                    f"a binary task has two classes, but {where} holds {len(vs)} values: "
                    f"{_listed(vs)}. Fix the labels, or use a multiclass project.",
                    source=source,
                    column=column,
                )
            raise ConfigError(
                f"{source}: {where} holds the classes {_listed(vs)}; say which is the positive "
                "class with positive_label in the mapping's [project] table (for labels: "
                "--positive-label), and optionally negative_label for the other."
            )
    if positive is not None and negative is not None:
        return positive, negative  # values outside the two are named row by row by the checks
    known = positive if positive is not None else negative
    role, other_role = ("positive", "negative") if positive is not None else ("negative", "positive")
    # A conventional class pairs only with its partner (true/false, yes/no, 1 with 0 or -1);
    # any other class is inferred when the data holds exactly one other value.
    partners = [
        b if positive is not None else a for a, b in CONVENTIONAL_PAIRS if (a if positive is not None else b) == known
    ]
    others = vs - {known}
    candidates = others & set(partners) if partners else others
    if len(candidates) > 1:
        raise IngestError(
            f"a binary task has two classes, but besides the {role} class {known!r} {where} "
            f"holds {len(others)} values: {_listed(others)}. Name the {other_role} class with "
            f"{other_role}_label, fix the labels, or use a multiclass project.",
            source=source,
            column=column,
        )
    if candidates:
        other = next(iter(candidates))
    else:
        other = partners[0] if len(partners) == 1 else None
    return (positive, other) if positive is not None else (other, negative)


def stored_classes(con: duckdb.DuckDBPyConnection, project) -> tuple[str | None, str | None]:
    """A binary project's known (positive, negative) classes.

    Sliceboard before 2026-12 guessed the negative class "0" beside a positive "1" for a
    project created from scores alone, before any label was seen. Such a guess, in a
    project that still holds no label, is not taken as known: the labels decide it.
    """

    classes = (project.positive_label, project.negative_label)
    if project.task != "binary" or classes != ("1", "0") or project.external is not None:
        return classes
    mapping = parse_mapping(project.mapping_toml, origin=f"stored mapping of {project.name!r}")
    if mapping.negative_label is not None or mapping.prediction is not None:
        return classes
    labeled = con.execute(
        f"SELECT (SELECT count(label) FROM {quote_ident(project.log_table)}) + "
        f"(SELECT count(label) FROM {quote_ident(project.pending_table)})"
    ).fetchall()[0][0]
    return classes if labeled else ("1", None)
