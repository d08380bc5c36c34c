"""`ai-operator demo`: the real product, end to end, with no token, no network and no cluster.

The example rules run over the sandbox's sample pull requests through the real GitHub client and
the real SDK: a dry run, the real pass, then the same pass again, which reuses every decision
whose pull request did not change and changes nothing. The
first two tests run the command as a new user would, with an empty environment; the others call
the same code in this process, which is quicker.
"""

from __future__ import annotations

import os
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ai_operator.jobs.config import Settings
from ai_operator.jobs.demo.run import DemoOptions, DemoResult, run_demo
from ai_operator.jobs.demo.view import as_json, as_text
from ai_operator.jobs.sandbox.standin import NOTICE
from tests.conftest import AI_TOKEN, ROOT, CliResult, run_cli
from tests.sandbox import FakeLLM
from tests.services import pushgateway

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("restore_logging")]

EMPTY_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "PYTHONPATH": str(ROOT)}

FINAL = {  # every covered sample PR: (rule, final action of the real pass)
    ("acme/web", 1): ("staging-automerge", "merge"),
    ("acme/web", 2): ("staging-automerge", "wait"),
    ("acme/web", 3): ("staging-automerge", "escalate"),
    ("acme/web", 4): ("staging-automerge", "escalate"),
    ("acme/web", 5): ("staging-automerge", "close"),
    ("acme/web", 7): ("staging-automerge", "escalate"),
    ("acme/web", 8): ("production-approval", "escalate"),
    ("acme/web", 9): ("production-approval", "wait"),
    ("acme/web", 10): ("dependabot-automerge", "escalate"),
    ("acme/api", 1): ("staging-automerge", "escalate"),
    ("acme/api", 2): ("staging-automerge", "escalate"),
    ("acme/api", 3): ("staging-automerge", "wait"),
    ("acme/api", 4): ("dependabot-automerge", "merge"),
    ("acme/api", 5): ("dependabot-automerge", "queue"),  # its base requires the merge queue
}
REFUSED = {  # the model proposed merge; a guardrail refused it in the real pass
    ("acme/web", 4): "draft",
    ("acme/web", 7): "checks-not-passed",
    ("acme/api", 2): "changes-requested",
    ("acme/api", 3): "head-moved",
}


def demo(**options: Any) -> DemoResult:
    return run_demo(DemoOptions(**options), Settings.from_env({}))


def rows(document: dict[str, Any], name: str) -> dict[tuple[str, int], dict[str, Any]]:
    [found] = [p for p in document["passes"] if p["name"] == name]
    return {(row["repository"], row["number"]): row for row in found["results"]}


def end_state(result: DemoResult) -> list[tuple[Any, ...]]:
    return [
        (pr.repository, pr.number, pr.state, pr.labels_added, len(pr.comments), pr.head_moved)
        for pr in result.after
    ]


@pytest.fixture(scope="module")
def first_run() -> CliResult:
    """The README's first command, with nothing in the environment."""
    return run_cli(["demo", "--output", "json"], EMPTY_ENV, timeout=120)


def test_with_an_empty_environment_it_merges_closes_escalates_and_waits(first_run):
    """Every covered sample PR gets its action; uncovered ones are left alone."""
    assert first_run.code == 0, first_run.stderr
    document = first_run.json()
    real = rows(document, "for real")
    assert {key: (row["rule"].split("/")[1], row["action"]) for key, row in real.items()} == FINAL
    after = {(pr["repository"], pr["number"]): pr for pr in document["pullRequests"]}
    assert after[("acme/web", 1)]["state"] == after[("acme/api", 4)]["state"] == "MERGED"
    assert after[("acme/web", 5)]["state"] == "CLOSED"
    assert after[("acme/web", 3)]["labelsAdded"] == ["needs-human-approval"]
    assert after[("acme/web", 8)]["labelsAdded"] == ["pending-human-approval"]
    for uncovered in (("acme/web", 6), ("acme/web", 11)):
        assert after[uncovered]["state"] == "OPEN" and after[uncovered]["decided"] == []
    assert document["problems"] == []


def test_the_guardrails_refuse_what_the_model_should_not_do(first_run):
    """Drafts, failed checks, change requests and a moved head are never merged."""
    real = rows(first_run.json(), "for real")
    for key, guardrail in REFUSED.items():
        assert (real[key]["proposedAction"], real[key]["guardrail"]) == ("merge", guardrail)
        assert not any(op.startswith("merge") for op in real[key]["operations"])
    production = real[("acme/web", 8)]
    assert production["proposedAction"] == "escalate"  # merge is not among its actions


def test_the_dry_run_changes_nothing_and_a_second_pass_changes_nothing(first_run):
    """Only the real pass sends mutations; the pass after it finds nothing left to do."""
    passes = {p["name"]: p for p in first_run.json()["passes"]}
    assert passes["dry run"]["mutations"] == {} and passes["again"]["mutations"] == {}
    assert passes["for real"]["mutations"]["mergePullRequest"] == 2
    assert passes["for real"]["mutations"]["enqueuePullRequest"] == 1  # queued, not merged
    assert first_run.json()["unchangedByTheLastPass"] is True
    assert all(row["dryRun"] for row in passes["dry run"]["results"])


def test_the_last_pass_reuses_every_unchanged_decision(first_run):
    """The last pass asks the model only about the PR whose head moved; the rest are reused."""
    document = first_run.json()
    passes = {p["name"]: p for p in document["passes"]}
    moved = {(pr["repository"], pr["number"]) for pr in document["pullRequests"] if pr["headMoved"]}
    last = rows(document, "again")

    assert {key for key, row in last.items() if not row["reused"]} == moved == {("acme/api", 3)}
    assert passes["again"]["decisionsReused"] == len(last) - len(moved)
    assert passes["again"]["modelCalls"] == len(moved)
    assert passes["for real"]["decisionsReused"] == passes["dry run"]["decisionsReused"] == 0


def test_the_last_pass_asks_a_configured_model_only_about_what_changed(llm: FakeLLM):
    """With AI_TOKEN set, no request (no token spent) for a PR whose decision is reused."""
    env = {"AI_TOKEN": AI_TOKEN, "AI_ENDPOINT": llm.anthropic_url, "AI_PROVIDER": "anthropic"}

    result = run_demo(DemoOptions(), Settings.from_env(env))

    dry, real, last = result.passes
    assert result.ok
    assert len(llm.requests) == dry.model_calls + real.model_calls + last.model_calls
    assert last.model_calls == 1 and last.reused == sum(len(r.results) for r in last.reports) - 1
    assert f"Model calls in this pass: 1 ({last.reused} decisions reused" in as_text(result)


def test_every_screen_says_the_stand_in_answered():
    """Without AI_TOKEN the output says, in every pass and in the JSON, whose answers these are."""
    result = run_cli(["demo"], EMPTY_ENV, timeout=120)

    assert result.code == 0, result.stderr
    assert result.stdout.count(NOTICE) >= 5  # the model line, three passes, the comments
    assert "The last pass changed nothing" in result.stdout
    assert "Traceback" not in result.stderr


def test_the_metrics_of_a_pass_are_shown(first_run):
    """Each rule's pass renders its metrics as Prometheus text."""
    metrics = {p["name"]: p for p in first_run.json()["passes"]}["for real"]["metrics"]
    staging = metrics["ai-operator-system/staging-automerge"]
    assert 'ai_operator_actions_total{action="merge"} 1' in staging
    assert 'ai_operator_guardrail_blocks_total{guardrail="draft"} 1' in staging


def test_the_pipeline_steps_reach_the_same_end_state():
    """fetch, decide each PR on its own, act: the same PRs end the same way as with `run`."""
    by_run, by_pipeline = demo(), demo(pipeline=True)

    assert by_pipeline.ok and by_run.ok
    assert end_state(by_pipeline) == end_state(by_run)
    assert [p.mutation_counts for p in by_pipeline.passes] == [
        p.mutation_counts for p in by_run.passes
    ]
    assert '"mode": "pipeline"' in as_json(by_pipeline)


def test_the_pipeline_counts_the_model_calls_its_decide_steps_made():
    """Each decide step's calls reach the pass's metrics, as in `run` (never 0 when asked)."""
    by_run, by_pipeline = demo(), demo(pipeline=True)

    def calls(result):
        return [[s.ai_calls for s in p.summaries] for p in result.passes]

    assert calls(by_pipeline) == calls(by_run)
    assert all(sum(per_rule) > 0 for per_rule in calls(by_pipeline)[:2])


def test_the_pipelines_last_pass_replays_its_memo_like_run_reuses_decisions():
    """The memo replays every unchanged PR's decide output: reused, no model call, as `run`."""
    by_run, by_pipeline = demo(), demo(pipeline=True)

    def reuse(result):
        last = result.passes[-1]
        return last.model_calls, last.reused, [s.decisions_reused for s in last.summaries]

    assert by_pipeline.ok
    assert reuse(by_pipeline) == reuse(by_run)
    assert by_pipeline.passes[-1].model_calls == 1  # only the PR whose head moved


def test_your_own_rule_runs_on_the_sample_pull_requests(tmp_path: Path):
    """--rule: a rule naming other repositories runs on the sandbox's, and says so."""
    rule = tmp_path / "mine.yaml"
    rule.write_text(
        "apiVersion: aioperator.io/v1alpha1\nkind: PRReconciliationRule\n"
        "metadata: {name: mine}\n"
        "spec:\n  repositories: [example/elsewhere]\n"
        "  selector: {labels: {include: [auto-merge]}}\n"
        "  allowedActions: [wait, escalate]\n"
        "  instruction: Escalate everything that is not waiting for checks.\n"
    )

    result = demo(rule_files=(rule,))

    assert result.ok
    [item] = result.rules
    assert item.repositories == ("acme/web", "acme/api") and "example/elsewhere" in str(item.note)
    finals = {row.action.value for row in result.passes[1].reports[0].results}
    assert finals <= {"wait", "escalate"}  # merge and close are not this rule's to take
    assert "mine" in as_text(result)


def test_a_bad_rule_file_is_a_one_line_error(tmp_path: Path):
    """The rule file's problem is named with its field; exit 1, no traceback."""
    rule = tmp_path / "bad.yaml"
    rule.write_text(
        "apiVersion: aioperator.io/v1alpha1\nkind: PRReconciliationRule\n"
        "metadata: {name: bad}\nspec: {instruction: x, mergeMethod: FAST}\n"
    )

    result = run_cli(["demo", "--rule", str(rule)], EMPTY_ENV)

    assert result.code == 1
    assert "spec.mergeMethod" in result.stderr and "Traceback" not in result.stderr


def test_with_ai_token_set_the_configured_model_is_asked(llm: FakeLLM):
    """AI_TOKEN (and AI_ENDPOINT) set: the model there answers, not the stand-in; no token shown."""
    env = {"AI_TOKEN": AI_TOKEN, "AI_ENDPOINT": llm.anthropic_url, "AI_PROVIDER": "anthropic"}

    result = run_demo(DemoOptions(), Settings.from_env(env))

    assert result.ok and not result.stand_in
    asked = sum(1 for p in result.passes for r in p.reports for row in r.results if not row.reused)
    assert len(llm.requests) == asked
    shown = as_text(result) + as_json(result)
    assert NOTICE not in shown and AI_TOKEN not in shown


@pytest.mark.services
def test_pushgateway_receives_each_pass(tmp_path: Path):
    """--pushgateway URL: every rule's group arrives at a real Pushgateway."""
    with pushgateway() as gateway:
        result = demo(pushgateway=gateway)
        with urllib.request.urlopen(f"{gateway}/metrics", timeout=5) as answer:
            text = answer.read().decode()

    assert result.ok and all(push.pushed for run in result.passes for push in run.pushes)
    for rule in ("staging-automerge", "production-approval", "dependabot-automerge"):
        assert f'rule="{rule}"' in text


@pytest.mark.services
def test_pushed_metrics_count_each_escalated_pull_request_once():
    """Dry run, real pass, last pass: each PR's escalation is counted once, by the real pass."""
    with pushgateway() as gateway:
        result = demo(pushgateway=gateway)
        with urllib.request.urlopen(f"{gateway}/metrics", timeout=5) as answer:
            text = answer.read().decode()

    escalated = Counter(rule for rule, action in FINAL.values() if action == "escalate")
    pushed = {
        rule: float(value)
        for line in text.splitlines()
        if line.startswith('ai_operator_actions_total{action="escalate"')
        for rule, value in [(_label(line, "rule"), line.rpartition(" ")[2])]
    }
    assert result.ok
    assert pushed == {rule: float(n) for rule, n in escalated.items()}


def _label(line: str, name: str) -> str:
    return line.partition(f'{name}="')[2].partition('"')[0]


def test_the_demo_command_is_the_readmes_first():
    """The README's set-up starts with the demo, through the script that installs first."""
    readme = (ROOT / "README.md").read_text()
    assert "scripts/ai-operator demo" in readme
    assert os.access(ROOT / "scripts/ai-operator", os.X_OK)
