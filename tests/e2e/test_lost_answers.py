"""A write GitHub applied but whose answer was lost is reconciled by reading back, never by
failing the pass or writing twice; "Name has already been taken" on createLabel means the label
exists. `ai-operator run`, and the compiled workflow's act step."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import cli_env, run_cli
from tests.e2e.test_people_win import FAILED, LABEL, one_pr, rows
from tests.e2e.test_pipeline_act import act_row, pr_act, run_staging, staging
from tests.e2e.test_run import RULE

pytestmark = pytest.mark.e2e

CREATE = RULE + "  escalation: {labels: [needs-human-approval], createMissingLabels: true}\n"


@pytest.fixture
def rule_file(tmp_path: Path) -> Path:
    path = tmp_path / "rule.yaml"
    path.write_text(CREATE)
    return path


@pytest.mark.parametrize(
    ("mutation", "title", "facts"),
    [
        pytest.param("createLabel", "Broken", FAILED, id="createLabel"),
        pytest.param("addLabelsToLabelable", "Broken", FAILED, id="addLabels"),
        pytest.param("addComment", "Broken", FAILED, id="addComment"),
        pytest.param("closePullRequest", "[close] Old", {}, id="closePullRequest"),
    ],
)
def test_run_reads_back_a_write_whose_answer_was_lost(
    world, github, llm, rule_file, mutation, title, facts
):
    """The write is applied, its answer lost (502): the pass reports it done, writes it once."""
    one_pr(world, title=title, **facts)
    github.lose_answer_of(mutation, status=502)

    [row] = rows(run_cli(["run", str(rule_file), "--output", "json"], cli_env(github, llm)))

    pr = world.pull_request("acme/web", 1)
    assert row["error"] is None and row["applied"] is True
    assert [m for m in github.mutations if m == mutation or mutation in str(m)].__len__() <= 1
    assert len(pr.comments) == 1
    if mutation == "closePullRequest":
        assert pr.state == "CLOSED"
    else:
        assert [name for name in pr.labels if name == LABEL] == [LABEL]
        assert sorted(world.labels("acme/web")).count(LABEL) == 1


def test_a_label_someone_else_created_meanwhile_is_used(world, github, llm, rule_file):
    """createLabel answers "Name has already been taken": the label exists; it is used."""
    one_pr(world, title="Broken", **FAILED)
    github.lose_answer_of("createLabel", status=0)  # created, connection dropped
    [row] = rows(run_cli(["run", str(rule_file), "--output", "json"], cli_env(github, llm)))
    assert row["error"] is None and LABEL in world.pull_request("acme/web", 1).labels


def test_the_pipeline_reads_back_a_label_whose_creation_answer_was_lost() -> None:
    """In the act pod: createLabel applied, answer lost; no failure, no second label."""
    with staging(**FAILED) as (world, github, llm):
        github.lose_answer_of("createLabel", status=502)
        run = run_staging(github, llm)

    assert run.phase == "Succeeded" and pr_act(run).attempts == 1
    assert act_row(run)["error"] is None
    assert LABEL in world.pull_request("acme/web", 1).labels
