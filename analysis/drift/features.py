"""Which of a project's features drift is measured on, and as what.

Categorical and boolean features are compared as categories (their values as text, a
missing value being a category of its own); numeric features as numbers (missing values
left out of the distribution, counted in the null rate). Free text is compared by its
length in characters, as a number: as categories, texts seen once or twice would look
drifted in every period (two samples of a large vocabulary share few words), while a
change in length (notes left empty, a template shortened) is a change worth a look. Timestamp
features are skipped: a date's distribution moves with the calendar by nature (an
account opened "recently" is a later date every day), so its drift would be flagged in
every period and tell nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from analysis.errors import ConfigError
from analysis.store.project import Project
from analysis.store.sql import quote_ident

CATEGORIES = "categories"
NUMBERS = "numbers"
AS_CATEGORIES = ("categorical", "boolean")
AS_NUMBERS = ("numeric",)
AS_LENGTHS = ("text",)


@dataclass(frozen=True)
class MeasuredFeature:
    """A feature column, its kind in the project, and how its drift is measured."""

    name: str
    kind: str
    measured_as: str  # CATEGORIES or NUMBERS

    @property
    def sql(self) -> str:
        """What is measured, over the log's columns: the column, or a text's length."""
        column = quote_ident(self.name)
        return f"length({column})" if self.kind in AS_LENGTHS else column


def measured_features(project: Project) -> tuple[MeasuredFeature, ...]:
    """The project's features in their stored order, timestamps left out."""
    measured = []
    for column in project.features:
        if column.kind in AS_CATEGORIES:
            measured.append(MeasuredFeature(column.name, column.kind, CATEGORIES))
        elif column.kind in AS_NUMBERS or column.kind in AS_LENGTHS:
            measured.append(MeasuredFeature(column.name, column.kind, NUMBERS))
    if not measured:
        raise ConfigError(
            f"{project.name} has no categorical, boolean, text or numeric feature to measure drift on "
            "(timestamp features are not measured)."
        )
    return tuple(measured)
