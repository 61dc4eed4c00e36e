"""Reports: what a user found, kept as ordered blocks that pin their parameters and
numbers, re-run against new data, shown in a meeting and exported as one HTML file."""

from analysis.reports.blocks import KINDS, TITLES
from analysis.reports.fingerprint import describe_changes, fingerprint
from analysis.reports.saved import (
    Block,
    BlockRerun,
    Report,
    add_block,
    create_report,
    delete_block,
    delete_report,
    edit_block,
    get_report,
    list_reports,
    move_block,
    position_after,
    refresh,
    rerun,
)

__all__ = [
    "KINDS",
    "TITLES",
    "Block",
    "BlockRerun",
    "Report",
    "add_block",
    "create_report",
    "default_report",
    "delete_block",
    "delete_report",
    "describe_changes",
    "edit_block",
    "fingerprint",
    "get_report",
    "latest_comparison",
    "list_reports",
    "move_block",
    "position_after",
    "refresh",
    "render_html",
    "rerun",
    "write_html",
    "write_pdf",
]


def __getattr__(name: str):
    # The default report compares versions: it needs the comparison engine (scipy,
    # statsmodels); the export draws charts (plotly). Each is imported when it is used
    # rather than by every page that lists reports or adds a block.
    if name in ("default_report", "latest_comparison"):
        from analysis.reports import default

        return getattr(default, name)
    if name in ("render_html", "write_html", "write_pdf"):
        from analysis.reports import html

        return getattr(html, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
