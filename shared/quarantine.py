"""Damaged day files moved aside whole: where they go, their names, and listing them.

``ingestor.lifecycle.salvage`` keeps a damaged ``.zst`` (or ``.gz``) day file byte for byte as
``quarantine/<stream>/<day file name>.<UTC stamp>`` and leaves only its readable frames
in the day file. No reader takes these files; ``chatlog verify`` and the ingestor's
``/healthz`` name them until the operator removes them (or retention expires their day).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from shared.layout import StorageLayout, Stream

_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})(\.jsonl\.(?:zst|gz))\.(\d{8}T\d{6}Z)(?:-\d+)?$")


@dataclass(frozen=True)
class QuarantinedFile:
    """One damaged original kept aside, and the day file holding its readable frames."""

    stream: Stream
    day: date
    path: Path
    day_file: Path


def quarantine_dir(layout: StorageLayout, stream: Stream) -> Path:
    """The folder of one stream's quarantined originals."""
    return layout.quarantine_dir / stream.value


def quarantine_path(layout: StorageLayout, stream: Stream, day_file: Path, at: datetime | None = None) -> Path:
    """A free name for a damaged ``day_file`` moved aside now (or at ``at``)."""
    stamp = (at or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    directory = quarantine_dir(layout, stream)
    candidate = directory / f"{day_file.name}.{stamp}"
    number = 1
    while candidate.exists():
        candidate = directory / f"{day_file.name}.{stamp}-{number}"
        number += 1
    return candidate


def quarantined(layout: StorageLayout, stream: Stream | None = None) -> list[QuarantinedFile]:
    """Every quarantined original (of one stream, or all), oldest day first."""
    found = []
    for s in Stream if stream is None else (stream,):
        directory = quarantine_dir(layout, s)
        try:
            names = sorted(os.listdir(directory))
        except FileNotFoundError:
            continue
        for name in names:
            match = _NAME.match(name)
            if match is None:
                continue
            try:
                day = date.fromisoformat(match.group(1))
            except ValueError:
                continue
            day_file = layout.day_path(s, day, match.group(2))
            found.append(QuarantinedFile(s, day, directory / name, day_file))
    return found


def quarantined_days(layout: StorageLayout, stream: Stream) -> set[date]:
    """The days of a stream that have a damaged original in quarantine."""
    return {q.day for q in quarantined(layout, stream)}


def has_quarantined(day_file: Path) -> bool:
    """True when a damaged original of this day file is in quarantine.

    Found from the day file's own place (``<root>/<stream>/<name>``), for callers that
    only have the path.
    """
    directory = day_file.parent.parent / "quarantine" / day_file.parent.name
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return False
    stem = day_file.name.split(".", 1)[0]
    return any(_NAME.match(name) and name.split(".", 1)[0] == stem for name in names)
