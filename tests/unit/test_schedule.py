"""Intervals become schedules that run at the stated period: exact, or the nearest shorter one."""

from __future__ import annotations

import itertools

import pytest
from croniter import croniter

from ai_operator.jobs.rules.schedule import (
    EXACT_PERIODS_MINUTES,
    Schedule,
    describe_period,
    interval_to_cron,
    resolve,
)
from ai_operator.jobs.rules.validation import check_rule
from tests.unit.test_validation import make_rule


def inexact(seconds: int, period: str) -> str:
    return (
        f"reconciliationInterval {seconds}s is not a period cron can keep exactly; passes run "
        f"{period}, the nearest shorter period it keeps"
    )


def sub_minute(seconds: int) -> str:
    return (
        f"reconciliationInterval {seconds}s is shorter than a minute; scheduled passes run "
        "every minute"
    )


TABLE = [
    pytest.param(10, "* * * * *", sub_minute(10), id="10s-every-minute"),
    pytest.param(30, "* * * * *", sub_minute(30), id="30s-every-minute"),
    pytest.param(60, "* * * * *", None, id="1min-exact"),
    pytest.param(90, "* * * * *", inexact(90, "every minute"), id="90s-down-to-1min"),
    pytest.param(120, "*/2 * * * *", None, id="2min-exact"),
    pytest.param(300, "*/5 * * * *", None, id="5min-exact"),
    pytest.param(420, "*/6 * * * *", inexact(420, "every 6 minutes"), id="7min-down-to-6"),
    pytest.param(600, "*/10 * * * *", None, id="10min-exact"),
    pytest.param(1500, "*/20 * * * *", inexact(1500, "every 20 minutes"), id="25min-down-to-20"),
    pytest.param(1800, "*/30 * * * *", None, id="30min-exact"),
    pytest.param(2700, "*/30 * * * *", inexact(2700, "every 30 minutes"), id="45min-down-to-30"),
    pytest.param(3600, "0 * * * *", None, id="hour-exact"),
    pytest.param(3630, "0 * * * *", inexact(3630, "every hour"), id="hour-and-30s-down-to-hour"),
    pytest.param(5000, "0 * * * *", inexact(5000, "every hour"), id="5000s-down-to-hour"),
    pytest.param(7200, "0 */2 * * *", None, id="2h-exact"),
    pytest.param(18000, "0 */4 * * *", inexact(18000, "every 4 hours"), id="5h-down-to-4h"),
    pytest.param(25200, "0 */6 * * *", inexact(25200, "every 6 hours"), id="7h-down-to-6h"),
    pytest.param(28800, "0 */8 * * *", None, id="8h-exact"),
    pytest.param(43200, "0 */12 * * *", None, id="12h-exact"),
    pytest.param(72000, "0 */12 * * *", inexact(72000, "every 12 hours"), id="20h-down-to-12h"),
    pytest.param(86400, "0 0 * * *", None, id="day-exact"),
]


@pytest.mark.parametrize(("seconds", "cron", "note"), TABLE)
def test_interval_table(seconds: int, cron: str, note: str | None) -> None:
    """Each interval from 10 s to a day: the cron line and the one sentence that explains it."""
    assert interval_to_cron(seconds) == Schedule(cron, note)


@pytest.mark.parametrize(("seconds", "cron", "note"), TABLE)
def test_validate_says_the_same(seconds: int, cron: str, note: str | None) -> None:
    """validate's warning is the schedule's note, word for word, and only when there is one."""
    findings = check_rule(make_rule(reconciliationInterval=seconds))
    assert [f.message for f in findings if f.field == "spec.reconciliationInterval"] == (
        [note] if note else []
    )


@pytest.mark.parametrize("minutes", EXACT_PERIODS_MINUTES)
def test_every_exact_period_really_runs_at_that_period(minutes: int) -> None:
    """Over two days, every gap between two passes is the stated period (no short :56 -> :00)."""
    schedule = interval_to_cron(minutes * 60)
    assert schedule.note is None
    runs = croniter(schedule.cron, 0)
    times = [runs.get_next(float) for _ in range(max(4, min(2 * 1440 // minutes, 200)))]
    assert {b - a for a, b in itertools.pairwise(times)} == {minutes * 60.0}
    assert describe_period(minutes).startswith(("every", "once"))


def test_rounding_is_always_down_to_the_nearest_exact_period() -> None:
    """From 1 minute to a day, the period chosen is the longest exact one not longer than asked."""
    for seconds in range(60, 86401, 10):
        chosen = max(m for m in EXACT_PERIODS_MINUTES if m * 60 <= seconds)
        assert interval_to_cron(seconds).cron == interval_to_cron(chosen * 60).cron, seconds


def test_a_cron_schedule_is_used_as_given() -> None:
    """`schedule` wins over the default interval and carries no note."""
    assert resolve("*/7 * * * *", None) == Schedule("*/7 * * * *")
    assert resolve(None, None) == interval_to_cron(30)
