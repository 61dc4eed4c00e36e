"""One call from a version to its estimate timeline: the stage, the reference window, the
slice's calibration, the periods (what the command line and a report block ask for; the
app keeps the fitted reference between calls and asks the steps itself)."""

from __future__ import annotations

from analysis.estimation.fit import fit_slice
from analysis.estimation.reference import ReferenceChoice, resolve_reference, version_stage
from analysis.estimation.timeline import EstimateTimeline, estimate_timeline
from analysis.slices import Slice, validate_slice
from analysis.store.project import Project


def estimate(
    con,
    project: Project,
    version: str,
    stage: str | None = None,
    slice_: Slice = Slice(),
    by: str = "day",
    choice: ReferenceChoice | None = None,
    metrics=None,
    method: str | None = None,
) -> EstimateTimeline:
    """``version``'s estimate timeline for ``slice_`` (``choice``: the reference window; the
    project's stored choice when None)."""
    slice_ = validate_slice(slice_, project)
    reference = resolve_reference(con, project, version, version_stage(con, project, version, stage), choice)
    return estimate_timeline(con, project, fit_slice(con, project, reference, slice_, method), by, metrics)
