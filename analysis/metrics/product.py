"""Product metrics: what the business measures, per project, as named aggregate SQL
expressions over the log's columns, each with a direction (is higher better?), a
unit and a display format. For example::

    revenue                    = sum(revenue)                                       higher, $
    approval_rate              = avg((NOT prediction)::int)                          higher
    loss_from_false_approvals  = sum(loss) FILTER (WHERE NOT prediction AND label)   lower, $

Every definition is checked before it is stored (:func:`analysis.metrics.expressions.
parse_aggregate_expression`: only aggregates over the project's own columns; no
subquery, table function, setting or other statement can get through), bound
against the log and evaluated on all of its rows per version and stage (under a
time bound), so a bad one gets a clear message and is not stored. What runs is
the SQL generated from the checked expression. A stored metric that fails later
(new rows it cannot take) is reported as failing by a comparison, with its reason
(:mod:`analysis.metrics.failures`), and the rest of the comparison still works.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import duckdb
import pandas as pd

from analysis.errors import ConfigError
from analysis.metrics.expressions import check_on_rows, first_line, parse_aggregate_expression, result_type, row_columns
from analysis.metrics.sql import STAGE, VERSION, GroupKey
from analysis.store.clock import utc_now
from analysis.store.project import Project
from analysis.store.scope import Scope
from analysis.store.sql import Sql, and_all, quote_ident

DIRECTIONS = ("higher", "lower")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_NUMERIC = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
    "BOOLEAN",
)


def _readable_spec(spec: str, value: float) -> str:
    """``spec`` with enough decimals to show three significant digits of a small value:
    a total's format (",.0f") would show a revenue of $0.43 per prediction as "$0"."""
    match = re.fullmatch(r"(,?)\.(\d+)f", spec)
    if not match or value == 0 or not math.isfinite(value) or abs(value) >= 100:
        return spec
    needed = min(6, max(int(match.group(2)), 2 - math.floor(math.log10(abs(value)))))
    return f"{match.group(1)}.{needed}f"


@dataclass(frozen=True)
class ProductMetric:
    name: str
    expression: str
    direction: str = "higher"  # which way is better
    unit: str = ""
    format: str = ",.2f"  # Python format spec for display

    def show(self, value: float) -> str:
        if value is None or value != value:
            return "–"
        text = format(value, _readable_spec(self.format, value))
        return f"{self.unit}{text}" if self.unit in ("$", "€", "£") else f"{text} {self.unit}".strip()

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "expression": self.expression,
            "direction": self.direction,
            "unit": self.unit,
            "format": self.format,
        }


def check_metric(con: duckdb.DuckDBPyConnection, project: Project, metric: ProductMetric) -> ProductMetric:
    """The metric, if its name, direction, format and expression are all valid for ``project``."""
    if not _NAME.fullmatch(metric.name or ""):
        raise ConfigError(
            f"A product metric's name is a word of letters, digits and _ (up to 64), "
            f"such as loss_from_false_approvals; not {metric.name!r}."
        )
    if metric.name in ("model_version", "stage", "day"):
        raise ConfigError(f"{metric.name!r} names a grouping column of the results; give the metric another name.")
    if metric.direction not in DIRECTIONS:
        raise ConfigError(f"Direction is 'higher' or 'lower' (which way is better), not {metric.direction!r}.")
    try:
        format(1234.5, metric.format)
    except (ValueError, TypeError):
        raise ConfigError(f"{metric.format!r} is not a number format; use one such as ',.2f' or '.1%'.") from None
    if len(metric.unit) > 20:
        raise ConfigError("A unit has at most 20 characters.")
    expr = parse_aggregate_expression(metric.expression, row_columns(project))
    try:
        kind = result_type(con, project, expr.sql)  # run where files and URLs are out of reach
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0].split(": ", 1)[-1]
        raise ConfigError(
            f"{metric.name} = {metric.expression!r} does not apply to {project.name}'s columns: {first}"
        ) from None
    if not str(kind).upper().startswith(_NUMERIC):
        raise ConfigError(f"{metric.name} = {metric.expression!r} gives {kind} values; a product metric is a number.")
    check_on_rows(con, project, expr, f"{metric.name} = {metric.expression!r}", aggregate=True)
    return metric


def define_metric(con: duckdb.DuckDBPyConnection, project: Project, metric: ProductMetric) -> ProductMetric:
    """Store ``metric`` (replacing one of the same name, keeping its place) after checking it."""
    check_metric(con, project, metric)
    con.execute("BEGIN TRANSACTION")
    try:
        _upsert(con, project, metric)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return metric


def store_metrics(con: duckdb.DuckDBPyConnection, project: Project, metrics: list[ProductMetric]) -> None:
    """Check every metric, then store them all, inside the caller's transaction (an
    ingest with a mapping that defines metrics: a bad one rolls the whole ingest back)."""
    for metric in metrics:
        check_metric(con, project, metric)
    for metric in metrics:
        _upsert(con, project, metric)


def _upsert(con, project: Project, metric: ProductMetric) -> None:
    row = con.execute(
        "SELECT position FROM sb_product_metrics WHERE project_id = ? AND name = ?", [project.project_id, metric.name]
    ).fetchall()
    position = (
        row[0][0]
        if row
        else con.execute(
            "SELECT coalesce(max(position), 0) + 1 FROM sb_product_metrics WHERE project_id = ?", [project.project_id]
        ).fetchall()[0][0]
    )
    con.execute("DELETE FROM sb_product_metrics WHERE project_id = ? AND name = ?", [project.project_id, metric.name])
    con.execute(
        "INSERT INTO sb_product_metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            project.project_id,
            metric.name,
            metric.expression,
            metric.direction,
            metric.unit,
            metric.format,
            position,
            utc_now(),
        ],
    )


def metrics_from_mapping(entries: dict) -> list[ProductMetric]:
    """``[metrics.NAME]`` tables of a mapping as product metrics (checked when stored)."""
    out = []
    for name, spec in entries.items():
        out.append(
            ProductMetric(
                name,
                spec["expression"],
                spec.get("direction", "higher"),
                spec.get("unit", ""),
                spec.get("format", ",.2f"),
            )
        )
    return out


def list_metrics(con: duckdb.DuckDBPyConnection, project: Project) -> list[ProductMetric]:
    rows = con.execute(
        "SELECT name, expression, direction, unit, format FROM sb_product_metrics "
        "WHERE project_id = ? ORDER BY position",
        [project.project_id],
    ).fetchall()
    return [ProductMetric(*r) for r in rows]


def delete_metric(con: duckdb.DuckDBPyConnection, project: Project, name: str) -> None:
    if name not in [m.name for m in list_metrics(con, project)]:
        raise ConfigError(f"{project.name} has no product metric named {name!r}.")
    con.execute("DELETE FROM sb_product_metrics WHERE project_id = ? AND name = ?", [project.project_id, name])


def product_metrics(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    scope: Scope = Scope(),
    *,
    group_by: tuple[GroupKey, ...] = (VERSION, STAGE),
    names: list[str] | None = None,
    where: tuple[str, list] = ("TRUE", []),
    metrics: list[ProductMetric] | None = None,
) -> pd.DataFrame:
    """Every (or the named) product metric per group of the rows in ``scope`` and
    ``where``; ``metrics`` replaces the project's definitions (a report's pinned ones).
    A metric that fails on these rows (data that changed since it was defined) is a
    column of NaN, and ``frame.attrs["failed"]`` maps its name to the reason."""
    metrics = list(metrics) if metrics is not None else list_metrics(con, project)
    if names is not None:
        unknown = sorted(set(names) - {m.name for m in metrics})
        if unknown:
            raise ConfigError(
                f"Unknown product metric(s) {', '.join(unknown)}; {project.name} has "
                f"{', '.join(m.name for m in metrics) or 'none'}."
            )
        metrics = [m for m in metrics if m.name in names]
    try:
        frame = _query(con, project, scope, group_by, where, metrics)
        frame.attrs["failed"] = {}
        return frame
    except Exception as whole:  # noqa: BLE001 - a metric that fails on these rows, or something else
        failed = {}
        for m in metrics:
            try:
                _query(con, project, scope, group_by, where, [m])
            except Exception as exc:  # noqa: BLE001 - DuckDB's or another engine's error, reported
                failed[m.name] = first_line(exc)
        if not failed:
            raise whole
        if len(failed) == len(metrics):  # every one: is it the metrics, or the rows (an engine that is down)?
            rows = Sql.compose(
                "SELECT count(*) FROM {log} WHERE {where}",
                log=quote_ident(project.log_table),
                where=and_all([scope.to_sql(), where]),
            )
            con.execute(*rows).fetchall()
    rest = [m for m in metrics if m.name not in failed]
    frame = _query(con, project, scope, group_by, where, rest) if rest or group_by else pd.DataFrame(index=[0])
    frame = frame.assign(**{name: float("nan") for name in failed})
    keys = [g.alias for g in group_by]
    frame = frame[[*keys, *(m.name for m in metrics)]] if len(frame.columns) else frame
    frame.attrs["failed"] = failed
    return frame


def _query(
    con,
    project: Project,
    scope: Scope,
    group_by: tuple[GroupKey, ...],
    where: tuple[str, list],
    metrics: list[ProductMetric],
) -> pd.DataFrame:
    columns = row_columns(project)
    keys = ", ".join(f"{g.sql} AS {quote_ident(g.alias)}" for g in group_by)
    values = [f"{parse_aggregate_expression(m.expression, columns).sql} AS {quote_ident(m.name)}" for m in metrics]
    select = ", ".join([keys] if keys else []) + (", " if keys and values else "") + ", ".join(values)
    if not select:
        return pd.DataFrame()
    positions = ", ".join(str(i + 1) for i in range(len(group_by)))
    group = f" GROUP BY {positions} ORDER BY {positions}" if group_by else ""
    query = Sql.compose(
        "SELECT {select} FROM {log} WHERE {where}{group}",
        select=select,
        log=quote_ident(project.log_table),
        where=and_all([scope.to_sql(), where]),
        group=group,
    )
    return con.execute(*query).df()
