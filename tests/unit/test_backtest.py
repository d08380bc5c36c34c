"""`ai-operator backtest`: the pull requests people settled, decided again, and scored.

The sandbox's history (`jobs.sandbox.samples.HISTORY`) holds, for the staging rule over 30 days,
seven settled pull requests it covers: two green ones merged, one abandoned one closed, a red one
a person approved and merged, a green one people closed (superseded), one with a change request
then closed, and a red one closed without a review. The stand-in decides merge, merge, close,
escalate, merge, escalate (the change request blocks the merge), escalate: the figures below.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from ai_operator.jobs.backtest.run import (
    BacktestError,
    BacktestOptions,
    Window,
    parse_window,
    run_backtest,
)
from ai_operator.jobs.backtest.view import as_json, as_table
from ai_operator.jobs.clients.github.search_query import build_settled_queries
from ai_operator.jobs.config import Settings
from ai_operator.jobs.policy.backtest import Happened, Settled, agrees, as_open
from ai_operator.jobs.policy.snapshot import Mergeable
from ai_operator.jobs.rules.model import Action, Selector
from ai_operator.jobs.sandbox import standin
from ai_operator.jobs.sandbox.github_search import parse_search
from ai_operator.jobs.sandbox.samples import add_history, build_history_world
from tests.conftest import AI_TOKEN, GITHUB_TOKEN, ROOT, cli_env, run_cli
from tests.factories import make_pr, review
from tests.sandbox import FakeGitHub, FakeLLM

pytestmark = pytest.mark.usefixtures("restore_logging")

NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
STAGING = ROOT / "examples" / "staging-automerge.yaml"
OFFLINE = Settings.from_env({})

EXPECTED_CONFUSION = {
    "merge": {"merged": 2, "closed": 1},
    "close": {"merged": 0, "closed": 1},
    "escalate": {"merged": 1, "closed": 2},
    "wait": {"merged": 0, "closed": 0},
}
EXPECTED_AGREEMENT = {
    "overall": 0.714,
    "agreed": 5,
    "of": 7,
    "byAction": {
        "merge": {"agreed": 2, "of": 3, "rate": 0.667},
        "close": {"agreed": 1, "of": 1, "rate": 1.0},
        "escalate": {"agreed": 2, "of": 3, "rate": 0.667},
        "wait": {"agreed": 0, "of": 0, "rate": None},
    },
}
EXPECTED_DISAGREEMENTS = [
    {
        "url": "https://github.com/acme/api/pull/101",
        "decided": "merge",
        "happened": "closed",
        "reason": "Checks passed and the pull request is mergeable.",
    },
    {
        "url": "https://github.com/acme/api/pull/104",
        "decided": "escalate",
        "happened": "closed",
        "reason": "Checks ended in FAILURE: a person should look at them.",
    },
]


def sandbox_backtest(**options: Any) -> dict[str, Any]:
    result = run_backtest(BacktestOptions(STAGING, sandbox=True, **options), OFFLINE, now=NOW)
    document: dict[str, Any] = json.loads(as_json(result))
    return document


# --- the sandbox's search: GitHub's date qualifiers ---------------------------------------------


@pytest.mark.parametrize(
    ("query", "found"),
    [
        pytest.param("is:pr is:merged merged:2026-12-04", {"acme/web#101"}, id="merged-on-a-day"),
        pytest.param(
            "is:pr is:merged merged:>=2026-11-30 repo:acme/web",
            {"acme/web#101", "acme/web#104", "acme/web#105", "acme/web#106"},
            id="merged-since-a-day",
        ),
        pytest.param("is:pr is:closed closed:<2026-11-01", {"acme/api#103"}, id="closed-before"),
        pytest.param(
            "is:pr is:closed is:unmerged closed:2026-11-20..2026-12-03",
            {"acme/web#103", "acme/api#101", "acme/api#102"},
            id="closed-unmerged-in-a-range",
        ),
        pytest.param(
            "is:pr is:closed closed:2026-12-05T00:00:00Z..* repo:acme/api",
            {"acme/api#104"},
            id="closed-since-a-time",
        ),
        pytest.param("is:pr merged:>2026-12-06", set(), id="nothing-merged-after"),
        pytest.param(
            "is:pr is:open closed:>2026-01-01", set(), id="an-open-pull-request-was-never-closed"
        ),
    ],
)
def test_the_sandbox_searches_settled_pull_requests_by_date(query: str, found: set[str]):
    """`merged:` and `closed:` take GitHub's forms: a day, >, >=, <, a range, `*`, a time."""
    world = build_history_world(NOW)
    matched = parse_search(query).run(world.pull_requests)
    assert {f"{pr.repository}#{pr.number}" for pr in matched} == found


def test_settled_queries_search_closed_pull_requests_in_the_window():
    """One `is:closed closed:SINCE..UNTIL` finds merged and closed ones, to the second."""
    selector = Selector.model_validate({"labels": {"include": ["staging"]}})
    [query] = build_settled_queries(
        ["acme/web", "acme/api"], selector, datetime(2026, 11, 7, tzinfo=UTC), NOW
    )
    assert query == (
        "is:pr is:closed closed:2026-11-07T00:00:00Z..2026-12-07T02:00:00Z archived:false "
        'label:"staging" repo:acme/web repo:acme/api sort:created-asc'
    )


# --- the figures the history implies -----------------------------------------------------------


def test_the_backtest_of_the_staging_rule_gives_the_figures_its_history_implies():
    """7 pull requests, the confusion table, 5 of 7 agree, and both disagreements with reasons."""
    document = sandbox_backtest()

    assert document["rule"] == "ai-operator-system/staging-automerge"
    assert document["window"] == {"since": "2026-11-07T02:00:00Z", "until": "2026-12-07T02:00:00Z"}
    assert document["prs"] == 7
    assert document["confusion"] == EXPECTED_CONFUSION
    assert document["agreement"] == EXPECTED_AGREEMENT
    assert document["disagreements"] == EXPECTED_DISAGREEMENTS
    assert document["cost"]["aiCalls"] == 7
    assert document["cost"]["githubRequests"] == 1  # one search page of 100 holds them all
    assert document["cost"]["aiTokens"]["input"] > 0


def test_the_table_shows_the_confusion_the_agreement_the_cost_and_the_disagreements():
    """What people read: one row per decided action, one column per outcome, then the rest."""
    result = run_backtest(BacktestOptions(STAGING, sandbox=True), OFFLINE, now=NOW)
    table = as_table(result)

    assert "decided \\ happened    merged  closed" in table
    assert "merge                      2       1" in table
    assert "escalate                   1       2" in table
    assert "agreement: 5 of 7 (71.4%)" in table
    assert "  close     1 of 1 (100.0%)" in table
    assert "cost: 7 AI calls" in table
    assert ", 1 GitHub requests" in table
    assert (
        "https://github.com/acme/api/pull/101: decided merge, people closed it: Checks passed"
        in table
    )


def test_a_shorter_window_and_a_limit_count_fewer():
    """`--since 4d` keeps what was settled in the last four days; `--limit` caps what is read."""
    recent = sandbox_backtest(since="4d")
    assert recent["prs"] == 2  # web#101 (3 days ago) and api#104 (1 day ago)
    assert recent["confusion"]["merge"] == {"merged": 1, "closed": 0}
    assert recent["confusion"]["escalate"] == {"merged": 0, "closed": 1}

    limited = sandbox_backtest(limit=2)
    assert limited["prs"] == 2


def test_a_recording_replays_the_same_figures(tmp_path: Path):
    """`--record` keeps every answer; `--replay` gives the same figures offline."""
    recording = tmp_path / "backtest.recording.yaml"
    recorded = sandbox_backtest(stand_in=True, record=recording)
    document = yaml.safe_load(recording.read_text())
    assert document["producedBy"] == standin.PRODUCED_BY
    assert {entry["case"] for entry in document["answers"]} >= {"acme/api#101", "acme/web#104"}

    replayed = sandbox_backtest(replay=recording)
    assert replayed["confusion"] == recorded["confusion"] == EXPECTED_CONFUSION
    assert replayed["disagreements"] == EXPECTED_DISAGREEMENTS


# --- against GitHub with a token (here: the fake one, through the same client) ------------------


def test_backtest_reads_github_with_a_token_and_writes_nothing(tmp_path: Path):
    """The command as a user runs it, against GitHub's API with GITHUB_TOKEN: no mutation."""
    world = build_history_world(datetime.now(UTC))
    with (
        FakeGitHub(world, token=GITHUB_TOKEN) as github,
        FakeLLM(brain=standin.standin_brain, token=AI_TOKEN) as llm,
    ):
        env = cli_env(github, llm)
        result = run_cli(["backtest", str(STAGING), "--since", "30d", "--output", "json"], env)
        assert result.code == 0, result.stderr
        document = result.json()
        assert github.mutations == []
    assert document["confusion"] == EXPECTED_CONFUSION
    assert document["agreement"] == EXPECTED_AGREEMENT
    assert document["disagreements"] == EXPECTED_DISAGREEMENTS
    assert document["github"] == "GitHub"


def test_backtest_without_a_token_says_how_to_try_it():
    """No GITHUB_TOKEN and no --sandbox: one line, exit 1."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": "/tmp"}
    result = run_cli(["backtest", str(STAGING)], env)
    assert result.code == 1
    assert result.stderr.startswith("error: neither GITHUB_TOKEN nor GITHUB_APP_ID is set")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param(
            {"since": "a month"},
            "--since 'a month' is neither a duration (30d, 12h, 2w) nor a date (2026-11-01)",
            id="unreadable-since",
        ),
        pytest.param(
            {"since": "2026-12-10"}, "--since 2026-12-10 is not before --until now", id="future"
        ),
        pytest.param(
            {"record": Path("a.yaml"), "replay": Path("b.yaml")},
            "--record and --replay exclude each other: record once, then replay",
            id="record-and-replay",
        ),
    ],
)
def test_bad_options_are_one_clear_error(options: dict[str, Any], message: str):
    """Each wrong option is named, before anything is read."""
    with pytest.raises(BacktestError) as raised:
        run_backtest(BacktestOptions(STAGING, sandbox=True, **options), OFFLINE, now=NOW)
    assert str(raised.value) == message


# --- the window and the approximations ---------------------------------------------------------


@pytest.mark.parametrize(
    ("since", "until", "window"),
    [
        pytest.param("30d", None, ("2026-11-07T02:00:00", "2026-12-07T02:00:00"), id="days"),
        pytest.param("12h", None, ("2026-12-06T14:00:00", "2026-12-07T02:00:00"), id="hours"),
        pytest.param("2w", None, ("2026-11-23T02:00:00", "2026-12-07T02:00:00"), id="weeks"),
        pytest.param(
            "2026-11-01",
            "2026-11-30",
            ("2026-11-01T00:00:00", "2026-11-30T23:59:59.999999"),
            id="dates-are-whole-days",
        ),
        pytest.param(
            "7d", "2026-11-30", ("2026-11-23T23:59:59.999999", "2026-11-30T23:59:59.999999"),
            id="a-duration-before-until",
        ),
    ],
)  # fmt: skip
def test_the_window(since: str, until: str | None, window: tuple[str, str]):
    """`--since` is a duration back from `--until` (default now) or a date; dates are UTC days."""
    found = parse_window(since, until, NOW)
    expected = Window(*(datetime.fromisoformat(w).replace(tzinfo=UTC) for w in window))
    assert found == expected


def settled(happened: Happened, **overrides: Any) -> Settled:
    return Settled(make_pr(**overrides), happened, NOW)


@pytest.mark.parametrize(
    ("decided", "item", "agreed"),
    [
        pytest.param(Action.MERGE, settled(Happened.MERGED), True, id="merge-merged"),
        pytest.param(Action.MERGE, settled(Happened.CLOSED), False, id="merge-closed"),
        pytest.param(Action.CLOSE, settled(Happened.CLOSED), True, id="close-closed"),
        pytest.param(Action.CLOSE, settled(Happened.MERGED), False, id="close-merged"),
        pytest.param(
            Action.ESCALATE,
            settled(Happened.MERGED, reviews=[review("alice", "APPROVED")]),
            True,
            id="escalate-a-person-stepped-in",
        ),
        pytest.param(
            Action.ESCALATE,
            settled(Happened.CLOSED, author="alice", reviews=[review("alice", "COMMENTED")]),
            False,
            id="escalate-only-the-author-spoke",
        ),
        pytest.param(Action.WAIT, settled(Happened.MERGED), False, id="wait-never-agrees"),
    ],
)  # fmt: skip
def test_when_a_decision_agrees_with_people(decided: Action, item: Settled, agreed: bool):
    """merge/merged, close/closed, escalate when a person stepped in; wait never (all settled)."""
    assert agrees(decided, item) is agreed


def test_a_settled_pull_request_is_decided_as_it_stood():
    """Open, mergeable (GitHub no longer computes it once closed), read when it was settled."""
    item = settled(
        Happened.CLOSED, state="CLOSED", mergeable="UNKNOWN", merge_state_status="UNKNOWN"
    )
    pr = as_open(item)
    assert (pr.state.value, pr.mergeable, pr.merge_state_status) == (
        "OPEN",
        Mergeable.MERGEABLE,
        "CLEAN",
    )
    assert pr.read_at == NOW

    conflicting = as_open(
        settled(Happened.CLOSED, mergeable="CONFLICTING", merge_state_status="DIRTY")
    )
    assert (conflicting.mergeable, conflicting.merge_state_status) == (
        Mergeable.CONFLICTING,
        "DIRTY",
    )


def test_the_history_can_be_added_to_any_world():
    """`add_history` settles each sample the given days before `now`."""
    world = FakeGitHub().world
    add_history(world, NOW)
    merged = world.pull_request("acme/web", 101)
    assert (merged.state, merged.merged_at) == ("MERGED", datetime(2026, 12, 4, 2, 0, tzinfo=UTC))
