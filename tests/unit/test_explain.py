"""`ai-operator explain`: why a rule does or does not act on a pull request right now.

Each row builds a sandbox GitHub holding one ordinary green pull request (acme/web#1), changes
one thing about it (or runs a pass first, then lets a person step in), and asks for the
explanation through the real GitHub client: the verdict names the right reason, in the words of
the pass itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from ai_operator.jobs.clients.ai import make_decision_client
from ai_operator.jobs.clients.decision_cache import DecisionFile
from ai_operator.jobs.clients.github import GitHubClient
from ai_operator.jobs.clients.kube import KubernetesAPI
from ai_operator.jobs.clients.outcome_index import OutcomeIndex
from ai_operator.jobs.explain.explanation import Explanation
from ai_operator.jobs.explain.run import (
    ExplainError,
    explain_pull_request,
    parse_pull_request,
)
from ai_operator.jobs.explain.view import as_json, as_text
from ai_operator.jobs.policy.caps import cap_block
from ai_operator.jobs.policy.snapshot import PullRequestKey
from ai_operator.jobs.reconcile.report import decision_fields
from ai_operator.jobs.reconcile.run import Reuse, run_pass
from ai_operator.jobs.rules.model import Action, PRReconciliationRule, RuleLimits
from ai_operator.jobs.rules.names import outcome_index_prefix
from ai_operator.jobs.rules.schedule import next_pass, resolve
from ai_operator.jobs.rules.validation import load_valid_rules
from ai_operator.jobs.sandbox import standin
from ai_operator.jobs.sandbox.github_world import FakeCheck, GitHubWorld
from tests.argo_interpreter import MemoCache
from tests.conftest import AI_TOKEN, GITHUB_TOKEN, ROOT, cli_env, run_cli
from tests.factories import make_pr, make_rule
from tests.sandbox import FakeGitHub, FakeLLM

pytestmark = pytest.mark.usefixtures("restore_logging")

MODEL = "anthropic/stand-in"
MAX_AGE = 3600.0
STAGING = ROOT / "examples" / "staging-automerge.yaml"
SELECTOR = {
    "labels": {"include": ["auto-merge", "staging"], "exclude": ["do-not-merge"]},
    "baseBranch": "main",
}
GREEN = {"labels": ["auto-merge", "staging"], "title": "Cache product pages"}

Change = Callable[[GitHubWorld], None]


def facts(**changed: Any) -> Change:
    def change(world: GitHubWorld) -> None:
        pr = world.pull_request("acme/web", 1)
        for name, value in changed.items():
            setattr(pr, name, value)

    return change


def nothing(world: GitHubWorld) -> None:
    pass


def reopened_by_carol(world: GitHubWorld) -> None:
    world.reopen("acme/web", 1, "carol")


def a_second_green_one_updated_earlier(world: GitHubWorld) -> None:
    first = world.pull_request("acme/web", 1)
    earlier = world.add_pull_request("acme/web", number=2, **GREEN)
    earlier.updated_at = first.updated_at - timedelta(minutes=5)


@dataclass(frozen=True)
class Row:
    """One situation: what changes, whether a pass ran first, what explain must say."""

    change: Change
    verdict: str
    words: str
    action: Action | None
    title: str = GREEN["title"]
    pass_first: bool = False
    dry_run: bool = True
    after_pass: Change = nothing
    spec: dict[str, Any] = field(default_factory=dict)
    number: int = 1


ROWS = [
    pytest.param(
        Row(facts(base_ref="develop"), "not-covered", "baseBranch: base branch is develop, not main", None),
        id="selector-miss-names-the-clause",
    ),
    pytest.param(
        Row(
            facts(labels=["auto-merge", "staging", "do-not-merge"]),
            "not-covered",
            "labels.exclude: carries excluded labels do-not-merge",
            None,
        ),
        id="exclude-label",
    ),
    pytest.param(
        Row(facts(is_draft=True, merge_state_status="DRAFT"), "draft", "the pull request is a draft", Action.ESCALATE),
        id="draft",
    ),
    pytest.param(
        Row(
            facts(rollup_state="FAILURE", checks=[FakeCheck("ci", conclusion="FAILURE", required=True)]),
            "checks-not-passed",
            "checks not passed: ci",
            Action.ESCALATE,
        ),
        id="failing-required-check",
    ),
    pytest.param(
        Row(
            facts(merge_state_status="BLOCKED", committed_at=datetime.now(UTC) - timedelta(hours=2)),
            "merge-blocked",
            "GitHub reports merge state BLOCKED (branch protection) 60 minutes after the head "
            "commit: a person must look",
            Action.ESCALATE,
        ),
        id="missing-required-check",
    ),
    pytest.param(
        Row(
            facts(reviews=[("alice", "CHANGES_REQUESTED")], review_decision="CHANGES_REQUESTED"),
            "changes-requested",
            "a reviewer requested changes",
            Action.ESCALATE,
        ),
        id="changes-requested",
    ),
    pytest.param(
        Row(
            facts(merge_state_status="BEHIND"),
            "branch-behind",
            "the branch is behind its base branch and must be updated before merging",
            Action.WAIT,
        ),
        id="behind-waits",
    ),
    pytest.param(
        Row(
            facts(mergeable="CONFLICTING", merge_state_status="DIRTY"),
            "not-mergeable",
            "the pull request has merge conflicts",
            Action.ESCALATE,
        ),
        id="conflict",
    ),
    pytest.param(
        Row(
            nothing,
            "reopened-by-person",
            "carol reopened the pull request after the operator closed it at this commit; it is "
            "not closed again",
            Action.ESCALATE,
            title="[abandoned] Try a new CDN",
            pass_first=True,
            dry_run=False,
            after_pass=reopened_by_carol,
        ),
        id="people-undid-it",
    ),
    pytest.param(
        Row(nothing, "reused", "reuses its recorded decision (merge): merge now", Action.MERGE, pass_first=True),
        id="reused-decision",
    ),
    pytest.param(
        Row(
            a_second_green_one_updated_earlier,
            "cap-reached",
            "spec.limits.maxMergesPerPass is 1 and 1 pull request(s) come first in the pass's "
            "order (acme/web#2): deferred to a later pass",
            Action.WAIT,
            spec={"limits": {"maxMergesPerPass": 1}},
        ),
        id="cap-reached",
    ),
]  # fmt: skip


def rule_of(row: Row) -> PRReconciliationRule:
    return make_rule(selector=SELECTOR, **row.spec)


def client(server: FakeGitHub) -> GitHubClient:
    return GitHubClient(
        server.url, SecretStr(GITHUB_TOKEN), max_retries=0, mutation_interval_seconds=0.0
    )


def explained(row: Row, tmp_path: Path) -> Explanation:
    world = GitHubWorld()
    world.add_pull_request("acme/web", number=1, **{**GREEN, "title": row.title})
    row.change(world)
    rule = rule_of(row)
    memory = DecisionFile(tmp_path / "memory", max_age_seconds=MAX_AGE)
    with FakeGitHub(world, token=GITHUB_TOKEN) as server:
        github = client(server)
        if row.pass_first:
            with FakeLLM(brain=standin.standin_brain, token=AI_TOKEN) as llm:
                model = make_decision_client(standin.model_config(llm.anthropic_url, AI_TOKEN))
                reuse = Reuse(memory, MODEL, MAX_AGE)
                run_pass(rule, ["acme/web"], github, model, dry_run=row.dry_run, reuse=reuse)
        row.after_pass(world)
        mutations = len(server.mutations)
        explanation = explain_pull_request(
            rule,
            PullRequestKey(repository="acme/web", number=row.number),
            github,
            memory,
            repositories=["acme/web"],
            model=MODEL,
            max_age=MAX_AGE,
            now=datetime.now(UTC),
        )
        assert len(server.mutations) == mutations, "explain wrote to GitHub"
    return explanation


@pytest.mark.parametrize("row", ROWS)
def test_explain_names_the_reason(row: Row, tmp_path: Path):
    """The verdict is the pass's own reason, in the pass's own words, and what the pass does."""
    explanation = explained(row, tmp_path)

    assert explanation.verdict == row.verdict, explanation.summary
    assert row.words in explanation.summary
    assert explanation.action == row.action
    json.loads(as_json(explanation, "GitHub"))  # both renderings work for every row
    assert explanation.summary in as_text(explanation, "GitHub")


def test_each_selector_clause_is_told_held_or_not_and_on_what(tmp_path: Path):
    """Not only the first miss: every clause the rule sets, in order."""
    row = Row(facts(base_ref="develop", labels=["auto-merge"]), "not-covered", "", None)
    clauses = [(c.name, c.held, c.detail) for c in explained(row, tmp_path).selector]
    assert clauses == [
        ("repositories", True, "acme/web is one of the rule's repositories"),
        ("state", True, "open"),
        ("labels.include", False, "missing labels staging"),
        ("labels.exclude", True, "carries none of do-not-merge"),
        ("baseBranch", False, "base branch is develop, not main"),
    ]


def test_each_safety_rule_is_told_with_githubs_own_words(tmp_path: Path):
    """A failing required check is named; the rules that hold say on what they held."""
    row = Row(
        facts(rollup_state="FAILURE", checks=[FakeCheck("ci", conclusion="FAILURE", required=True)]),
        "checks-not-passed",
        "",
        None,
    )  # fmt: skip
    gates = {g.name: g for g in explained(row, tmp_path).safety}
    checks = gates["checks"].block
    assert checks is not None
    assert checks.reason == "checks not passed: ci"
    assert gates["draft"].block is None and gates["draft"].held == "not a draft"
    assert gates["merge-method"].held == "the repository allows SQUASH merges"


def test_the_escalation_comment_gives_the_same_reason_as_explain(tmp_path: Path):
    """A blocked merge is explained in the words of the escalation comment and the decision log."""
    row = Row(facts(is_draft=True, merge_state_status="DRAFT"), "draft", "", None)
    world = GitHubWorld()
    world.add_pull_request("acme/web", number=1, **GREEN)
    row.change(world)
    rule = rule_of(row)
    with (
        FakeGitHub(world, token=GITHUB_TOKEN) as server,
        FakeLLM(brain=standin.standin_brain, token=AI_TOKEN) as llm,
    ):
        github = client(server)
        explanation = explain_pull_request(
            rule,
            PullRequestKey(repository="acme/web", number=1),
            github,
            None,
            repositories=["acme/web"],
            model=MODEL,
            max_age=MAX_AGE,
            now=datetime.now(UTC),
        )
        model = make_decision_client(standin.model_config(llm.anthropic_url, AI_TOKEN))
        [result] = run_pass(rule, ["acme/web"], github, model, dry_run=False).results
    [comment] = world.pull_request("acme/web", 1).comments
    assert result.guardrail_reason == explanation.reason == "the pull request is a draft"
    assert f"> Safety rule: {explanation.reason}." in comment.body
    logged = decision_fields(result)  # the decision log's line
    assert (logged["guardrail"], logged["guardrail_reason"]) == (
        explanation.verdict,
        explanation.reason,
    )


def test_the_recorded_decision_is_not_reused_once_the_facts_change(tmp_path: Path):
    """Memory says what it holds, and why a pass would not reuse it."""
    row = Row(
        nothing, "asks-model", "", None, pass_first=True, after_pass=facts(title="Another title")
    )
    recorded = explained(row, tmp_path).recorded
    assert recorded.decision is not None and recorded.decision.action is Action.MERGE
    assert (recorded.reused, recorded.why_not) == (
        False,
        "the facts, the rule or the model changed",
    )


def test_the_next_scheduled_pass_comes_from_the_rules_schedule():
    """Every minute by default here; a cron in its timezone; none while suspended."""
    now = datetime(2026, 12, 7, 2, 0, 30, tzinfo=UTC)
    assert next_pass(resolve(None, 60), None, now) == datetime(2026, 12, 7, 2, 1, tzinfo=UTC)
    morning = next_pass(resolve("0 9 * * 1-5", None), "Europe/Paris", now)
    assert morning.astimezone(UTC) == datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("limits", "ahead", "capped"),
    [
        pytest.param({}, 5, False, id="no-cap"),
        pytest.param({"maxMergesPerPass": 2}, 1, False, id="room-left"),
        pytest.param({"maxMergesPerPass": 2}, 2, True, id="cap-taken-by-those-first"),
        pytest.param({"maxMergesPerPass": 0}, 0, True, id="zero-defers-everything"),
        pytest.param({"maxClosesPerPass": 0}, 0, False, id="a-close-cap-is-not-a-merge-cap"),
    ],
)
def test_the_cap_defers_what_comes_after_it(limits: dict[str, int], ahead: int, capped: bool):
    """The merge-ready pull requests first in the pass's order take the cap; the rest wait."""
    base = datetime(2026, 12, 1, tzinfo=UTC)
    pr = make_pr(number=50, updated_at=base)
    first = [make_pr(number=i, updated_at=base - timedelta(hours=i + 1)) for i in range(ahead)]
    later = [make_pr(number=90, updated_at=base + timedelta(hours=1))]
    block = cap_block(pr, Action.MERGE, [*first, pr, *later], RuleLimits(**limits))
    assert (block is not None) is capped
    if block is not None:
        assert block.guardrail == "cap-reached" and block.transient


@pytest.mark.parametrize(
    ("text", "display"),
    [
        ("acme/web#3", "acme/web#3"),
        ("https://github.com/acme/api/pull/12", "acme/api#12"),
        ("https://github.example.com/acme/api/pull/12/", "acme/api#12"),
    ],
)
def test_a_pull_request_is_named_as_people_write_it(text: str, display: str):
    """OWNER/REPO#N, or its URL on GitHub or GitHub Enterprise."""
    assert parse_pull_request(text).display == display


def test_a_badly_named_pull_request_is_one_clear_error():
    with pytest.raises(ExplainError, match="names no pull request: write OWNER/REPO#N"):
        parse_pull_request("web 3")


# --- as a user runs it ---------------------------------------------------------------------------


def test_explain_on_the_sandbox_needs_no_credentials():
    """`--sandbox`: the sample that carries do-not-merge is not covered, said in JSON; exit 0."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": "/tmp"}
    result = run_cli(["explain", str(STAGING), "acme/web#6", "--sandbox", "--output", "json"], env)
    assert result.code == 0, result.stderr
    document = result.json()
    assert (document["verdict"], document["reason"]) == (
        "not-covered",
        "carries excluded labels do-not-merge",
    )
    assert document["nextPass"] is not None


def test_explain_with_a_token_reads_what_run_remembered():
    """After `run`, `explain` reads its recorded decision and says it is reused; writes nothing."""
    world = GitHubWorld()
    world.add_pull_request("acme/web", number=1, **GREEN)
    rule = STAGING
    with (
        FakeGitHub(world, token=GITHUB_TOKEN) as github,
        FakeLLM(brain=standin.standin_brain, token=AI_TOKEN) as llm,
    ):
        env = cli_env(github, llm)
        ran = run_cli(["run", str(rule), "--dry-run"], env)
        assert ran.code == 0, ran.stderr
        result = run_cli(["explain", str(rule), "https://github.com/acme/web/pull/1"], env)
        assert github.mutations == []
    assert result.code == 0, result.stderr
    assert "now: reuses its recorded decision (merge): merge now" in result.stdout
    assert "recorded decision: merge at " in result.stdout


def test_explain_reads_the_pipelines_record_from_the_rules_outcome_index():
    """With AI_OPERATOR_KUBERNETES_API (kubectl proxy's URL, say), the recorded decision is the one
    the rule's pipeline keeps in its outcome index in the cluster, not `run`'s local one."""
    world = GitHubWorld()
    world.add_pull_request("acme/web", number=1, **GREEN)
    rule = next(iter(load_valid_rules([STAGING]))).rule
    cluster = MemoCache()  # the namespace's ConfigMaps
    with (
        cluster.serve(rule.metadata.namespace) as url,
        FakeGitHub(world, token=GITHUB_TOKEN) as github,
        FakeLLM(brain=standin.standin_brain, token=AI_TOKEN) as llm,
    ):
        prefix = outcome_index_prefix(rule.metadata.name)
        index = OutcomeIndex(
            KubernetesAPI(url), rule.metadata.namespace, prefix, max_age_seconds=MAX_AGE
        )
        model = make_decision_client(standin.model_config(llm.anthropic_url, AI_TOKEN))
        reuse = Reuse(index, MODEL, MAX_AGE)
        run_pass(rule, ["acme/web"], client(github), model, dry_run=True, reuse=reuse)
        env = cli_env(github, llm) | {"AI_OPERATOR_KUBERNETES_API": url}
        result = run_cli(["explain", str(STAGING), "acme/web#1"], env)
        assert github.mutations == []
    assert result.code == 0, result.stderr
    assert "recorded decision: merge at " in result.stdout
    assert cluster.objects, "the index is in the cluster"
