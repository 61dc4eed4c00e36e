"""The demo project: a consumer-lending model in production, canary and shadow.

``build_demo`` generates, deterministically from a seed, about 60 days of loan
applications scored by three model versions:

* ``credit-v1`` in **production**, scoring every application (except the canary share);
* ``credit-v2`` in **canary**, scoring 15% of applications from day 36 on;
* ``credit-v3`` in **shadow**, scoring the *same* applications as production from
  day 30 on (its predictions share the example id with v1's, so they pair).

The task is binary: will the applicant default? (positive label ``default``,
negative ``repaid``). Each prediction has mixed-type features, and product
outcomes per prediction: ``revenue`` (interest earned on approved loans that are
repaid) and ``loss`` (principal lost on approved loans that default). For the
canary and shadow versions these outcomes are what their own decision would
have produced.

Labels arrive late, 3 days or more (13 on average) after the application, so the last weeks are
only partly labeled. They are delivered as a labels file keyed by example
(application) id, and the outcomes as a file keyed by prediction id.

Planted failure slices (where a version is much worse than elsewhere):

1. ``channel = partner_api AND employment = self_employed``: credit-v1 misses
   defaults (scores far too low).
2. ``region = east AND device = android AND term_months = 60``: credit-v3
   flags good applicants as defaults.
3. ``age < 25``: credit-v2 is close to guessing.
4. ``credit_history_years IS NULL`` (thin files): every version is somewhat worse.

A planted change, for the monitors: from day 57 (the last three days, which no label has
reached yet) the credit bureau's data stops reaching credit-v1 for mobile-app applications,
and it scores them nearly blind. Only the label-free estimate can see it; no labeled figure
changes. The demo comes with monitors (:data:`DEMO_MONITORS`, and the headline metric on
every channel), evaluated once when it is built: the Monitor page opens on the alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.ingest.labels import attach_labels
from analysis.ingest.mapping import load_mapping
from analysis.ingest.predictions import ingest_predictions
from analysis.monitors.definitions import Monitor, add_monitor, auto_monitors
from analysis.monitors.run import run_monitors
from analysis.slices import Slice
from analysis.store.project import find_project, get_project
from analysis.store.schema import PROJECT_METADATA, drop_project_tables
from analysis.store.sql import in_transaction

DEMO_PROJECT = "lending-demo"
DEMO_END = datetime(2026, 11, 1)
DEMO_DAYS = 60
DEMO_REQUESTS_PER_DAY = 5000
THRESHOLD = 0.3
CANARY_START_DAY = 36
OUTAGE_DAY = 57  # from this day on credit-v1 scores mobile-app applications without the bureau's data
SHADOW_START_DAY = 30
CANARY_SHARE = 0.15

# The demo's column mapping is a worked example of the TOML format.
DEMO_MAPPING_PATH = Path(__file__).resolve().parent.parent / "data" / "demo_mapping.toml"

EMPLOYMENT = np.array(["salaried", "self_employed", "contractor", "unemployed", "retired", "student"])
EMPLOYMENT_P = [0.55, 0.15, 0.10, 0.05, 0.08, 0.07]
REGIONS = np.array(["north", "south", "east", "west", "capital"])
REGION_P = [0.18, 0.22, 0.20, 0.17, 0.23]
CHANNELS = np.array(["web", "mobile_app", "branch", "partner_api"])
CHANNEL_P = [0.38, 0.32, 0.12, 0.18]
PURPOSES = np.array(["debt_consolidation", "home_improvement", "car", "education", "medical", "business", "other"])
PURPOSE_P = [0.32, 0.18, 0.17, 0.08, 0.07, 0.10, 0.08]
TERMS = np.array([12, 24, 36, 60])
TERM_P = [0.15, 0.30, 0.35, 0.20]
NOTE_OPENERS = np.array(
    [
        "Consolidating",
        "Paying off",
        "Refinancing",
        "Covering",
        "Funding",
        "Financing",
        "Spreading",
    ]
)
NOTE_OBJECTS = np.array(
    [
        "two credit cards",
        "a used car",
        "kitchen renovation",
        "medical bills",
        "tuition fees",
        "equipment for my shop",
        "a family wedding",
        "moving costs",
        "roof repairs",
        "a store card",
    ]
)


@dataclass
class DemoData:
    predictions: pd.DataFrame
    labels: pd.DataFrame  # keyed by application_id (example id)
    outcomes: pd.DataFrame  # keyed by prediction_id


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _applications(day: int, n_days: int, per_day: int, seed: int, end: datetime) -> pd.DataFrame:
    """One day's applications with their true default probability (deterministic per day)."""
    rng = np.random.default_rng([seed, day])
    weekday = (end - timedelta(days=n_days - day)).weekday()
    volume = per_day * (0.72 if weekday >= 5 else 1.08) * (1 + 0.003 * day)
    n = max(1, int(rng.poisson(volume)))
    start = end - timedelta(days=n_days - day)
    seconds = np.sort(rng.integers(0, 86400, n))
    ts = pd.Timestamp(start) + pd.to_timedelta(seconds, unit="s")

    age = np.clip(np.round(rng.gamma(4.0, 5.5, n) + 18), 18, 80).astype(np.int64)
    employment = rng.choice(EMPLOYMENT, n, p=EMPLOYMENT_P)
    employment = np.where((age < 24) & (rng.random(n) < 0.45), "student", employment)
    employment = np.where((age > 66) & (rng.random(n) < 0.7), "retired", employment)
    income = np.round(np.exp(rng.normal(10.7, 0.5, n)) * np.where(employment == "student", 0.35, 1.0), -2)
    term = rng.choice(TERMS, n, p=TERM_P).astype(np.int64)
    loan = np.round(np.clip(income * rng.uniform(0.05, 0.6, n), 1000, 60000), -2)
    region = rng.choice(REGIONS, n, p=REGION_P)
    channel = rng.choice(CHANNELS, n, p=CHANNEL_P)
    device = np.where(
        channel == "branch",
        "in_person",
        np.where(
            channel == "partner_api",
            "server",
            rng.choice(np.array(["desktop", "ios", "android"]), n, p=[0.35, 0.30, 0.35]),
        ),
    )
    device = np.where((channel == "mobile_app") & (device == "desktop"), "android", device)
    purpose = rng.choice(PURPOSES, n, p=PURPOSE_P)
    history = np.round(np.clip(rng.gamma(2.0, 4.0, n) - (age < 25) * 3, 0, 50), 1)
    thin_file = rng.random(n) < np.where(age < 25, 0.25, 0.06)
    history = np.where(thin_file, np.nan, history)
    cosigner = rng.random(n) < 0.12
    opened = pd.Timestamp(start) - pd.to_timedelta(rng.integers(30, 365 * 15, n), unit="D")
    note = np.char.add(
        np.char.add(rng.choice(NOTE_OPENERS, n), " "),
        np.char.add(rng.choice(NOTE_OBJECTS, n), np.char.add(" for about ", loan.astype(np.int64).astype(str))),
    )

    bureau = np.clip(np.round(rng.normal(680, 70, n) - 40 * thin_file - 25 * (age < 25)), 300, 850).astype(np.int64)
    lti = loan / income
    logit = (
        -3.2
        - 0.018 * (bureau - 680)
        + 3.0 * lti
        + 0.7 * (term == 60)
        + 1.3 * (employment == "unemployed")
        + 0.5 * (employment == "contractor")
        + 0.6 * (employment == "self_employed")
        - 0.9 * cosigner
        - 0.06 * np.nan_to_num(history, nan=2.0)
        + 0.8 * thin_file
        + 0.35 * (age < 25)
        + 0.45 * (purpose == "business")
        + 0.25 * (channel == "partner_api")
    )
    # The partner channel's self-employed applicants default far more often,
    # through a signal that credit-v1 never learned.
    partner_self = (channel == "partner_api") & (employment == "self_employed")
    logit = logit + 1.6 * partner_self
    app_ids = np.char.add(f"app-{day:02d}-", np.arange(n).astype(str))
    return pd.DataFrame(
        {
            "application_id": app_ids,
            "scored_at": ts,
            "age": age,
            "income": income,
            "bureau_score": bureau,
            "loan_amount": loan,
            "term_months": term,
            "employment": employment,
            "region": region,
            "channel": channel,
            "device": device,
            "purpose": purpose,
            "credit_history_years": history,
            "has_cosigner": cosigner,
            "account_opened": opened,
            "applicant_note": note,
            "_logit": logit,
            "_day": day,
            "_default": rng.random(n) < _sigmoid(logit),
            "_u_canary": rng.random(n),
            "_delay": 3 + rng.gamma(1.6, 6.0, n),
            "_noise1": rng.normal(0, 1, n),
            "_noise2": rng.normal(0, 1, n),
            "_noise3": rng.normal(0, 1, n),
        }
    )


def _score(apps: pd.DataFrame, version: str) -> np.ndarray:
    noise = apps[["_noise1", "_noise2", "_noise3"]].to_numpy()
    logit = apps["_logit"].to_numpy()
    partner_self = ((apps["channel"] == "partner_api") & (apps["employment"] == "self_employed")).to_numpy()
    thin = apps["credit_history_years"].isna().to_numpy()
    if version == "credit-v1":
        z = logit + 0.75 * noise[:, 0]
        z = np.where(partner_self, logit - 2.6 + 0.5 * noise[:, 0], z)  # misses the partner signal
        outage = (apps["_day"] >= OUTAGE_DAY) & (apps["channel"] == "mobile_app")
        z = np.where(outage.to_numpy(), 0.25 * logit - 1.0 + 0.75 * noise[:, 0], z)  # blind without the bureau
    elif version == "credit-v2":
        z = logit + 0.5 * noise[:, 1]
        young = (apps["age"] < 25).to_numpy()
        z = np.where(young, -1.2 + 1.2 * noise[:, 1], z)  # close to guessing for under-25s
    else:
        z = logit + 0.5 * noise[:, 2]
        trap = ((apps["region"] == "east") & (apps["device"] == "android") & (apps["term_months"] == 60)).to_numpy()
        z = np.where(trap, z + 2.4, z)  # flags good applicants in one corner
    z = np.where(thin, z + 0.8 * noise[:, 0], z)  # thin files are hard for every version
    return np.round(_sigmoid(z), 4)


def generate_day(
    day: int,
    *,
    seed: int = 7,
    n_days: int = DEMO_DAYS,
    requests_per_day: int = DEMO_REQUESTS_PER_DAY,
    end: datetime = DEMO_END,
) -> DemoData:
    """Predictions, labels and outcomes for one day (deterministic per day)."""
    apps = _applications(day, n_days, requests_per_day, seed, end)
    as_of = pd.Timestamp(end)
    canary = (day >= CANARY_START_DAY) & (apps["_u_canary"].to_numpy() < CANARY_SHARE)
    label_at = apps["scored_at"] + pd.to_timedelta(apps["_delay"], unit="D")
    known = (label_at <= as_of).to_numpy()
    apps["_known"] = known
    parts = []
    plan = [("credit-v1", "production", ~canary)]
    if day >= CANARY_START_DAY:
        plan.append(("credit-v2", "canary", canary))
    if day >= SHADOW_START_DAY:
        plan.append(("credit-v3", "shadow", ~canary))
    for version, stage, mask in plan:
        sub = apps[mask].copy()
        if sub.empty:
            continue
        score = _score(sub, version)
        predicted_default = score >= THRESHOLD
        defaulted = sub["_default"].to_numpy()
        approved = ~predicted_default
        interest = sub["loan_amount"].to_numpy() * 0.14 * sub["term_months"].to_numpy() / 12 * 0.55
        sub["revenue"] = np.round(np.where(approved & ~defaulted, interest, np.where(approved, interest * 0.1, 0.0)), 2)
        sub["loss"] = np.round(np.where(approved & defaulted, sub["loan_amount"].to_numpy() * 0.62, 0.0), 2)
        short = {"credit-v1": "v1", "credit-v2": "v2", "credit-v3": "v3"}[version]
        sub["prediction_id"] = np.char.add(f"{short}-", sub["application_id"].to_numpy().astype(str))
        sub["model_version"] = version
        sub["stage"] = stage
        sub["p_default"] = score
        sub["predicted"] = np.where(predicted_default, "default", "repaid")
        parts.append(sub)
    preds = pd.concat(parts, ignore_index=True)
    labels = pd.DataFrame(
        {
            "application_id": apps["application_id"][known],
            "outcome": np.where(apps["_default"][known], "default", "repaid"),
            "outcome_at": label_at[known].dt.floor("s"),
        }
    )
    outcomes = preds.loc[preds["_known"].to_numpy(), ["prediction_id", "revenue", "loss"]].reset_index(drop=True)
    columns = [
        "prediction_id",
        "application_id",
        "scored_at",
        "model_version",
        "stage",
        "predicted",
        "p_default",
        "age",
        "income",
        "bureau_score",
        "loan_amount",
        "term_months",
        "employment",
        "region",
        "channel",
        "device",
        "purpose",
        "credit_history_years",
        "has_cosigner",
        "account_opened",
        "applicant_note",
    ]
    return DemoData(preds[columns], labels.reset_index(drop=True), outcomes)


def generate_demo(
    *, seed: int = 7, n_days: int = DEMO_DAYS, requests_per_day: int = DEMO_REQUESTS_PER_DAY, end: datetime = DEMO_END
) -> DemoData:
    days = [
        generate_day(d, seed=seed, n_days=n_days, requests_per_day=requests_per_day, end=end) for d in range(n_days)
    ]
    return DemoData(
        pd.concat([d.predictions for d in days], ignore_index=True),
        pd.concat([d.labels for d in days], ignore_index=True),
        pd.concat([d.outcomes for d in days], ignore_index=True),
    )


DEMO_MONITORS = (
    Monitor("accuracy", "accuracy", "realized"),
    *(
        Monitor(
            f"accuracy on channel = {c}",
            "accuracy",
            "realized",
            slice_=Slice.from_dict({"conditions": [{"column": "channel", "op": "in", "values": [str(c)]}]}),
        )
        for c in CHANNELS
    ),
    Monitor("rows", "rows", "volume"),
    Monitor("labels", "labeled_share", "coverage"),
)


def _monitor(con, project) -> None:
    """The demo's monitors (and the headline metric of every channel), evaluated once."""
    for monitor in DEMO_MONITORS:
        add_monitor(con, project, monitor)
    auto_monitors(con, project, ["channel"])
    run_monitors(con, project)


def demo_mapping():
    return load_mapping(DEMO_MAPPING_PATH)


def build_demo(
    store,
    *,
    seed: int = 7,
    n_days: int = DEMO_DAYS,
    requests_per_day: int = DEMO_REQUESTS_PER_DAY,
    replace: bool = False,
    progress=None,
    monitors: bool = True,
) -> dict:
    """Generate the demo and ingest it through the public paths (predictions,
    then late labels by example id, then outcomes by prediction id)."""

    def step(fraction: float, text: str) -> None:
        if progress is not None:
            progress(fraction, text)

    step(0.05, "Generating 60 days of loan applications")
    data = generate_demo(seed=seed, n_days=n_days, requests_per_day=requests_per_day)
    with store.write() as con:
        existing = find_project(con, DEMO_PROJECT)
        if existing is not None:
            if not replace:
                return {
                    "project": DEMO_PROJECT,
                    "created": False,
                    "message": f"project {DEMO_PROJECT!r} already exists; use --replace to rebuild it",
                }
            con.execute("BEGIN TRANSACTION")
            try:
                drop_project_tables(con, existing.project_id)
                for t in PROJECT_METADATA:
                    con.execute(f"DELETE FROM {t} WHERE project_id = ?", [existing.project_id])
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        step(0.35, f"Ingesting {len(data.predictions):,} predictions")
        pred = ingest_predictions(
            con, data.predictions, project=DEMO_PROJECT, mapping=demo_mapping(), source_name="demo predictions"
        )
        step(0.7, f"Attaching {len(data.labels):,} late labels")
        lab = attach_labels(con, data.labels, project=DEMO_PROJECT, key="example", source_name="demo labels")
        step(0.85, "Attaching product outcomes")
        out = attach_labels(con, data.outcomes, project=DEMO_PROJECT, key="prediction", source_name="demo outcomes")
        if monitors:  # (benchmarks make their own)
            step(0.9, "Evaluating the monitors")
            project = get_project(con, DEMO_PROJECT)
            in_transaction(con, lambda: _monitor(con, project))
        con.execute("CHECKPOINT")
    step(1.0, "Done")
    return {
        "project": DEMO_PROJECT,
        "created": True,
        "predictions": pred.inserted,
        "labeled_applications": lab.rows_read,
        "labeled_predictions": lab.applied,
        "outcome_rows": out.applied,
    }
