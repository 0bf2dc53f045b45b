"""Wall-clock buckets of CHATLOG_TIMEZONE, each with the first real instant it holds.

Statistics are stored per local (date, hour). Around a zone transition that key is
not one real hour: a repeated hour (clocks set back) holds two real hours in one
bucket, a skipped hour holds none, a 30-minute shift (Australia/Lord_Howe) makes a
bucket of 30 or 90 minutes, and a skipped day (Pacific/Apia, 2011-12-30) has no
instant at all. So every view lists each existing bucket exactly once, starting at
its first real instant, and leaves out buckets no instant falls in. Series stamped
with UTC hours would be wrong twice over: a zone with a non-hour offset
(Asia/Kathmandu, +05:45) starts its hours at a quarter past, and a repeated hour
would be read twice.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

Bucket = tuple[str, int]  # date (ISO), hour (-1 for a whole day)
Slot = tuple[Bucket, datetime]  # the bucket and its first instant (aware, in the zone)

_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)


def _first_instant(wall: datetime, tz: ZoneInfo, whole_day: bool) -> datetime | None:
    """The first instant whose local time is ``wall`` or, when ``wall`` was skipped, the
    transition that skipped it; None when that instant is not in ``wall``'s bucket (its
    hour, or its date when ``whole_day``)."""
    earlier = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    later = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if later < earlier:
        # ``wall`` fell in a gap (fold=1 maps it before the transition, fold=0 after): the
        # bucket can only start at the transition, found by bisection to the second.
        low, high = later, earlier
        while high - low > timedelta(seconds=1):
            middle = low + (high - low) / 2
            if middle.astimezone(tz).utcoffset() == low.astimezone(tz).utcoffset():
                low = middle
            else:
                high = middle
        earlier = high.replace(microsecond=0)
    local = earlier.astimezone(tz)
    if local.date() != wall.date() or not (whole_day or local.hour == wall.hour):
        return None
    return local


def hour_slots(first_wall: datetime, last_wall: datetime, tz: ZoneInfo) -> list[Slot]:
    """Every local hour from ``first_wall`` to ``last_wall`` (naive, on the hour) that has
    at least one instant, once each, oldest first."""
    out: list[Slot] = []
    wall = first_wall
    while wall <= last_wall:
        start = _first_instant(wall, tz, whole_day=False)
        if start is not None:
            out.append(((wall.date().isoformat(), wall.hour), start))
        wall += _HOUR
    return out


def day_slots(first: date, last: date, tz: ZoneInfo) -> list[Slot]:
    """Every local date from ``first`` to ``last`` that has at least one instant, with the
    instant it starts (midnight, or the transition when midnight was skipped)."""
    out: list[Slot] = []
    day = first
    while day <= last:
        start = _first_instant(datetime(day.year, day.month, day.day), tz, whole_day=True)
        if start is not None:
            out.append(((day.isoformat(), -1), start))
        if day == date.max:
            break
        day += _DAY
    return out


def wall_hour(instant: datetime, tz: ZoneInfo) -> datetime:
    """The naive local hour an aware instant falls in."""
    local = instant.astimezone(tz)
    return datetime(local.year, local.month, local.day, local.hour)


def epoch_ms(instant: datetime) -> int:
    """Milliseconds since the epoch of an aware instant."""
    return int(instant.timestamp() * 1000)
