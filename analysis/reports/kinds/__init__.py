"""The kinds of report block, one module each, in one registry: pages, the command line
and the HTML export ask a block's kind what to do (:class:`~.base.BlockKind`).

A kind imports the engine it computes with inside ``compute`` (and ``pin``): pages that
only draw or list blocks then load without the comparison and discovery engines (scipy,
statsmodels), which a fresh server's first page would otherwise wait for."""

from __future__ import annotations

from analysis.errors import ConfigError
from analysis.reports.kinds.base import BlockKind, Card
from analysis.reports.kinds.comparison import Comparison
from analysis.reports.kinds.discovery import Discovery
from analysis.reports.kinds.estimate import EstimateBlock
from analysis.reports.kinds.gate import Gate
from analysis.reports.kinds.headline import Headline
from analysis.reports.kinds.note import Note
from analysis.reports.kinds.series import Series
from analysis.reports.kinds.slice import SliceBlock
from analysis.reports.kinds.valsets import ValidationSets

REGISTRY: dict[str, BlockKind] = {
    k.name: k
    for k in (
        Headline(),
        Comparison(),
        Gate(),
        SliceBlock(),
        Discovery(),
        ValidationSets(),
        Series(),
        EstimateBlock(),
        Note(),
    )
}


def kind_of(name: str) -> BlockKind:
    """The kind of that name, or a readable refusal naming the kinds there are."""
    if name not in REGISTRY:
        raise ConfigError(f"A report block is one of {', '.join(REGISTRY)}, not {name!r}.")
    return REGISTRY[name]


__all__ = ["REGISTRY", "BlockKind", "Card", "kind_of"]
