"""When a rule's passes run: cron checks and the interval-to-cron mapping.

Scheduled passes run from a five-field cron (Argo's and Kubernetes' one-minute granularity), so
``reconciliationInterval`` seconds are mapped to a period cron keeps exactly (a divisor of the hour
in minutes, a divisor of the day in hours, or the day): the interval itself when it is one, else
the longest one shorter than it, with a note saying so. Pure: no clock, no I/O.
"""

from __future__ import annotations

import math
import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime

from croniter import croniter

DEFAULT_INTERVAL_SECONDS = 30


@dataclass(frozen=True)
class Schedule:
    """A resolved schedule: the cron line to use, and why it differs from what was asked."""

    cron: str
    note: str | None = None


def check_cron(expression: str) -> None:
    """Raise ValueError unless ``expression`` is a valid five-field cron line."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f"cron schedule {expression!r} has {len(fields)} fields; five are needed "
            "(minute hour day-of-month month day-of-week)"
        )
    try:
        valid = croniter.is_valid(expression)
    except Exception:  # whatever the library does with odd input, the schedule is invalid
        valid = False
    if not valid:
        raise ValueError(f"cron schedule {expression!r} is not valid")


_TIMEZONE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,3}$")
_MAX_TIMEZONE = 64


def check_timezone(name: str) -> None:
    """Raise ValueError unless ``name`` is an IANA timezone known to this machine.

    Whatever the name, only ValueError comes out: a directory of the database (``America``), a
    name too long for a file name, or one with odd characters is an unknown timezone too.
    """
    shown = name if len(name) <= _MAX_TIMEZONE else name[:_MAX_TIMEZONE] + "..."
    if len(name) > _MAX_TIMEZONE or not _TIMEZONE_NAME.match(name):
        raise ValueError(f"unknown timezone {shown!r}")
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown timezone {shown!r}") from exc


def resolve(schedule: str | None, interval_seconds: int | None) -> Schedule:
    """The cron line for a rule's ``schedule`` or ``reconciliationInterval``."""
    if schedule is not None:
        return Schedule(schedule)
    return interval_to_cron(interval_seconds or DEFAULT_INTERVAL_SECONDS)


# Periods a five-field cron keeps exactly, in minutes: a step that divides the hour, a step in
# hours that divides the day, and the day itself. ``*/7`` is not one: it also runs :56 -> :00.
EXACT_PERIODS_MINUTES = (
    *(1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30),
    *(60, 120, 180, 240, 360, 480, 720),
    1440,
)


def interval_to_cron(seconds: int) -> Schedule:
    """The cron line that runs at ``seconds``, or at the longest exact period shorter than it.

    Always the same direction (passes are never further apart than asked), said once in the note;
    sub-minute intervals are the one exception: cron cannot run more often than every minute.
    """
    if seconds < 60:
        return Schedule(
            "* * * * *",
            f"reconciliationInterval {seconds}s is shorter than a minute; scheduled passes run "
            "every minute",
        )
    minutes = max(p for p in EXACT_PERIODS_MINUTES if p * 60 <= seconds)
    note = None
    if minutes * 60 != seconds:
        note = (
            f"reconciliationInterval {seconds}s is not a period cron can keep exactly; passes run "
            f"{describe_period(minutes)}, the nearest shorter period it keeps"
        )
    return Schedule(_cron_every(minutes), note)


def _cron_every(minutes: int) -> str:
    if minutes == 1:
        return "* * * * *"
    if minutes < 60:
        return f"*/{minutes} * * * *"
    if minutes == 60:
        return "0 * * * *"
    if minutes < 1440:
        return f"0 */{minutes // 60} * * *"
    return "0 0 * * *"


def describe_period(minutes: int) -> str:
    """Say an exact period in words: ``every 6 minutes``, ``every hour``, ``once a day``."""
    if minutes == 1:
        return "every minute"
    if minutes < 60:
        return f"every {minutes} minutes"
    if minutes == 60:
        return "every hour"
    if minutes < 1440:
        return f"every {minutes // 60} hours"
    return "once a day"


def next_pass(schedule: Schedule, timezone: str | None, after: datetime) -> datetime:
    """When the next scheduled pass of ``schedule`` starts after ``after`` (in ``timezone``)."""
    zone = zoneinfo.ZoneInfo(timezone) if timezone else UTC
    found: datetime = croniter(schedule.cron, after.astimezone(zone)).get_next(datetime)
    return found


def minutes_between(schedule: Schedule) -> int:
    """A conservative estimate of the minutes between two passes (at least 1)."""
    first = croniter(schedule.cron, 0)
    a: float = first.get_next(float)
    b: float = first.get_next(float)
    return max(1, math.floor((b - a) / 60))
