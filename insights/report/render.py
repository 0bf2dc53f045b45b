"""A report in one of its formats: ``markdown``, ``html`` or ``json``."""

from __future__ import annotations

import msgspec

from insights.report.markdown import as_markdown
from insights.report.model import Report
from insights.report.page import as_html

FORMATS = ("markdown", "html", "json")
CONTENT_TYPES = {"markdown": "text/markdown", "html": "text/html", "json": "application/json"}


def render(report: Report, fmt: str) -> str:
    """The report as text in ``fmt`` (one of ``FORMATS``)."""
    if fmt == "html":
        return as_html(report)
    if fmt == "markdown":
        return as_markdown(report)
    if fmt == "json":
        return msgspec.json.format(msgspec.json.encode(report)).decode() + "\n"
    raise ValueError(f"unknown report format {fmt!r}: one of {', '.join(FORMATS)}")
