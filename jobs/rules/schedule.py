"""When a rule's passes run: cron checks and the interval-to-cron mapping.

Scheduled passes run from a five-field cron (Argo's and Kubernetes' one-minute granularity), so
``reconciliationInterval`` seconds are mapped to whole minutes here, with a note whenever the
mapping is not exact. Pure: no clock, no I/O.
"""

from __future__ import annotations

import math
import re
import zoneinfo
from dataclasses import dataclass

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


def interval_to_cron(seconds: int) -> Schedule:
    """Map an interval in seconds to the nearest whole-minute cron line."""
    minutes = max(1, round(seconds / 60))
    if seconds < 60:
        return Schedule(
            "* * * * *",
            f"reconciliationInterval {seconds}s is shorter than a minute; scheduled passes run "
            "every minute",
        )
    if minutes < 60:
        cron = "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
        exact = seconds == minutes * 60 and 60 % minutes == 0
        note = None if exact else _approx_note(seconds, f"every {minutes} minutes")
        return Schedule(cron, note)
    hours = max(1, round(minutes / 60))
    if hours >= 24:
        return Schedule("0 0 * * *", None if seconds == 86400 else _approx_note(seconds, "daily"))
    cron = "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
    exact = seconds == hours * 3600 and 24 % hours == 0
    return Schedule(cron, None if exact else _approx_note(seconds, f"every {hours} hours"))


def _approx_note(seconds: int, what: str) -> str:
    return f"reconciliationInterval {seconds}s is not a whole schedule step; passes run {what}"


def minutes_between(schedule: Schedule) -> int:
    """A conservative estimate of the minutes between two passes (at least 1)."""
    first = croniter(schedule.cron, 0)
    a: float = first.get_next(float)
    b: float = first.get_next(float)
    return max(1, math.floor((b - a) / 60))
