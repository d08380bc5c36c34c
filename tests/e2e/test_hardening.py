"""Faults found in real-world failure reports, each met as a user meets it: the CLI, end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ai_operator.jobs.policy.markers import make_marker, render_marker
from tests.conftest import CliResult, cli_env, run_cli
from tests.sandbox import FakeComment, FakeGitHub, FakeLLM, GitHubWorld, Malformed

pytestmark = pytest.mark.e2e

COVERED = ["auto-merge", "staging"]
RULE_NAME = "ai-operator-system/staging-automerge"


def rule_text(name: str = "staging-automerge", **spec: object) -> str:
    """A rule covering auto-merge + staging PRs of acme/web (override any spec field)."""
    body: dict[str, object] = {
        "repositories": ["acme/web"],
        "selector": {"labels": {"include": COVERED, "exclude": ["do-not-merge"]}},
        "instruction": "PR #{{ pr.number }}: {{ pr.title }}. Merge when green.",
    }
    body.update(spec)
    return yaml.safe_dump(
        {
            "apiVersion": "aioperator.io/v1alpha1",
            "kind": "PRReconciliationRule",
            "metadata": {"name": name, "namespace": "ai-operator-system"},
            "spec": body,
        }
    )


def write(tmp_path: Path, text: str, name: str = "rule.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def one_line_error(result: CliResult) -> str:
    """The only stderr line that is not a JSON log line; no traceback anywhere."""
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    assert len(lines) == 1, result.stderr
    return lines[0]


# --- 2. one PR never stops the pass ------------------------------------------------------------


def test_a_template_failing_on_one_pr_fails_only_that_pr(
    world: GitHubWorld, github: FakeGitHub, llm: FakeLLM, tmp_path: Path
) -> None:
    """`{{ pr.deletions / pr.additions }}` with 0 additions: that PR's error, the other merged."""
    world.add_pull_request("acme/web", number=1, labels=COVERED, additions=0)
    world.add_pull_request("acme/web", number=2, labels=COVERED)
    rule = write(tmp_path, rule_text(instruction="Ratio {{ pr.deletions / pr.additions }}"))

    result = run_cli(["run", str(rule), "--output", "json"], cli_env(github, llm))

    assert result.code == 2 and "Traceback" not in result.stderr
    rows = result.rows()
    assert "ZeroDivisionError" in rows[1]["error"]
    assert rows[2]["applied"] and world.pull_request("acme/web", 2).state == "MERGED"


def test_an_answer_the_sdk_cannot_read_fails_only_that_pr(
    world: GitHubWorld, github: FakeGitHub, llm: FakeLLM, tmp_path: Path
) -> None:
    """A response shape the SDK chokes on (no usage, no content) is that PR's error only."""
    world.add_pull_request("acme/web", number=1, labels=COVERED)
    world.add_pull_request("acme/web", number=2, labels=COVERED)
    shapeless = {"id": "m", "type": "message", "role": "assistant", "model": "m", "content": None}
    llm.answer_next(Malformed({**shapeless, "stop_reason": "end_turn", "usage": None}))
    rule = write(tmp_path, rule_text())

    result = run_cli(
        ["run", str(rule), "--output", "json", "--parallelism", "1"], cli_env(github, llm)
    )

    assert result.code == 2 and "Traceback" not in result.stderr
    rows = result.rows()
    assert rows[1]["error"] and not rows[1]["applied"]
    assert world.pull_request("acme/web", 2).state == "MERGED"


def test_every_rule_is_checked_before_any_rule_acts(
    world: GitHubWorld, github: FakeGitHub, llm: FakeLLM, tmp_path: Path
) -> None:
    """The second rule's configuration is wrong: the first does not act, one line, exit 1."""
    world.add_pull_request("acme/web", number=1, labels=COVERED)
    rules = rule_text("first") + "---\n" + rule_text("second", repositories=[])
    result = run_cli(["run", str(write(tmp_path, rules))], cli_env(github, llm))

    assert result.code == 1
    assert "second" in one_line_error(result)
    assert github.mutations == [] and llm.requests == []


def test_one_failing_rule_never_stops_the_next(
    world: GitHubWorld, github: FakeGitHub, llm: FakeLLM, tmp_path: Path
) -> None:
    """A rule whose pass fails is reported; the next rule still acts; the report is printed."""
    world.add_pull_request("acme/web", number=1, labels=COVERED)
    unsearchable = {"labels": {"include": [f"{i}{'x' * 99}" for i in range(3)]}}
    rules = rule_text("first", selector=unsearchable) + "---\n" + rule_text("second")
    result = run_cli(["run", str(write(tmp_path, rules)), "--output", "json"], cli_env(github, llm))

    assert result.code == 2
    report = result.json()
    assert [rule["error"] is not None for rule in report["rules"]] == [True, False]
    assert world.pull_request("acme/web", 1).state == "MERGED"


# --- 4. both spellings of a bot ------------------------------------------------------------------


@pytest.mark.parametrize("author", ["app/dependabot", "dependabot[bot]"])
def test_a_bot_named_either_way_is_found_and_merged(
    world: GitHubWorld, github: FakeGitHub, llm: FakeLLM, tmp_path: Path, author: str
) -> None:
    """`app/dependabot` validates and runs exactly like `dependabot[bot]`."""
    world.add_pull_request("acme/web", number=1, labels=COVERED, author="dependabot[bot]")
    world.add_pull_request("acme/web", number=2, labels=COVERED, author="octocat")
    selector = {"labels": {"include": COVERED}, "author": author}
    rule = write(tmp_path, rule_text(selector=selector))

    assert run_cli(["validate", str(rule)], cli_env(github, llm)).code == 0
    result = run_cli(["run", str(rule), "--output", "json"], cli_env(github, llm))

    assert result.code == 0, result.stderr
    assert list(result.rows()) == [1]
    assert world.pull_request("acme/web", 1).state == "MERGED"


# --- 5. a merge method the repository refuses ----------------------------------------------------


def test_a_refused_merge_method_is_escalated_once(
    world: GitHubWorld, github: FakeGitHub, llm: FakeLLM, tmp_path: Path
) -> None:
    """SQUASH in a repository that allows only merge commits: one escalation, never a failure."""
    world.add_pull_request("acme/web", number=1, labels=COVERED)
    world.repository("acme/web").merge_methods = {"MERGE"}
    rule = write(tmp_path, rule_text(mergeMethod="SQUASH"))
    env = cli_env(github, llm)

    first = run_cli(["run", str(rule), "--output", "json"], env)
    second = run_cli(["run", str(rule), "--output", "json"], env)

    assert (first.code, second.code) == (0, 0)
    assert first.rows()[1]["guardrail"] == "merge-method-not-allowed"
    assert "mergePullRequest" not in github.mutations
    assert len(world.pull_request("acme/web", 1).comments) == 1


# --- 6. every page is read -----------------------------------------------------------------------


def test_a_pr_with_many_labels_and_comments_is_handled_whole(
    world: GitHubWorld, github: FakeGitHub, llm: FakeLLM, tmp_path: Path
) -> None:
    """The opt-in label past the first page counts; an old comment's marker stops a repeat."""
    labels = [f"area-{i:03}" for i in range(60)] + COVERED
    pr = world.add_pull_request(
        "acme/web",
        number=1,
        labels=labels,
        rollup_state="FAILURE",
        checks=[],
    )
    marker = make_marker(RULE_NAME, "escalate", pr.head_oid)
    pr.comments.append(FakeComment(world.viewer_login, f"Escalated.\n{render_marker(marker)}"))
    pr.comments += [FakeComment("alice", f"ping {i}") for i in range(120)]
    rule = write(tmp_path, rule_text())

    result = run_cli(["run", str(rule), "--output", "json"], cli_env(github, llm))

    assert result.code == 0, result.stderr
    assert result.rows()[1]["action"] == "escalate"
    assert "addComment" not in github.mutations
    assert len(world.pull_request("acme/web", 1).comments) == 121


# --- 8. a write GitHub applied although its answer was lost ---------------------------------------


def test_a_merge_whose_answer_was_lost_is_reported_done(
    world: GitHubWorld, github: FakeGitHub, llm: FakeLLM, tmp_path: Path
) -> None:
    """GitHub merged, then answered 502: the row says merged, and the exit code is 0."""
    world.add_pull_request("acme/web", number=1, labels=COVERED)
    github.lose_answer_of("mergePullRequest", status=502)
    rule = write(tmp_path, rule_text())

    result = run_cli(["run", str(rule), "--output", "json"], cli_env(github, llm))

    assert result.code == 0, result.stderr
    row = result.rows()[1]
    assert (row["action"], row["applied"], row["error"]) == ("merge", True, None)


# --- 9. exit codes ---------------------------------------------------------------------------------


def test_a_refused_github_token_is_a_one_line_configuration_error(
    world: GitHubWorld, github: FakeGitHub, llm: FakeLLM, tmp_path: Path
) -> None:
    """401 from GitHub: exit 1 before anything is asked or changed, one line, no traceback."""
    world.add_pull_request("acme/web", number=1, labels=COVERED)
    env = cli_env(github, llm, GITHUB_TOKEN="ghp-wrong-token-0000000000")
    result = run_cli(["run", str(write(tmp_path, rule_text()))], env)

    assert result.code == 1
    assert "refused the token" in one_line_error(result)
    assert llm.requests == []


def test_a_refused_model_token_is_a_configuration_error(
    world: GitHubWorld, github: FakeGitHub, llm: FakeLLM, tmp_path: Path
) -> None:
    """401 from the model: nothing changes, the report is printed, exit 1 (not 2)."""
    world.add_pull_request("acme/web", number=1, labels=COVERED)
    env = cli_env(github, llm, AI_TOKEN="sk-ant-wrong-token-0000")
    result = run_cli(["run", str(write(tmp_path, rule_text())), "--output", "json"], env)

    assert result.code == 1
    assert result.rows()[1]["error"] and github.mutations == []


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["run", "--bogus"], id="unknown-option"),
        pytest.param(["nope"], id="unknown-command"),
        pytest.param(["validate"], id="missing-argument"),
    ],
)
def test_usage_errors_are_told_apart_from_failed_prs(
    github: FakeGitHub, llm: FakeLLM, args: list[str]
) -> None:
    """A usage error exits 64 (EX_USAGE), never 2 (some pull requests failed)."""
    result = run_cli(args, cli_env(github, llm))
    assert result.code == 64 and "Traceback" not in result.stderr


# --- 10. CLI habits --------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["--version"], ["-h"], ["run", "-h"], ["step", "-h"]])
def test_version_and_short_help(github: FakeGitHub, llm: FakeLLM, args: list[str]) -> None:
    """`--version` names the version; `-h` is `--help`."""
    result = run_cli(args, cli_env(github, llm))
    assert result.code == 0 and result.stdout.strip()
    if args == ["--version"]:
        assert result.stdout.startswith("ai-operator ")


@pytest.mark.parametrize(
    ("args", "extra", "fragment"),
    [
        pytest.param(["run", "RULE"], {"LOG_LEVEL": "verbose"}, "LOG_LEVEL", id="log-level-typo"),
        pytest.param(["compile", "RULE", "--image", ""], {}, "image", id="empty-image"),
        pytest.param(["compile", "RULE", "-o", "FILE"], {}, "not a directory", id="o-a-plain-file"),
    ],
)
def test_bad_input_is_one_line_never_a_traceback(
    github: FakeGitHub,
    llm: FakeLLM,
    tmp_path: Path,
    args: list[str],
    extra: dict[str, str],
    fragment: str,
) -> None:
    """A typo in the environment or an option: exit 1 and one line."""
    rule = write(tmp_path, rule_text())
    plain = write(tmp_path, "not yaml output", "notes.txt")
    args = [{"RULE": str(rule), "FILE": str(plain)}.get(arg, arg) for arg in args]
    result = run_cli(args, cli_env(github, llm, **extra))
    assert result.code == 1
    assert fragment in one_line_error(result)


def test_a_rule_can_come_from_stdin(world: GitHubWorld, github: FakeGitHub, llm: FakeLLM) -> None:
    """`-` reads the rule from standard input, for validate and run."""
    world.add_pull_request("acme/web", number=1, labels=COVERED)
    env = cli_env(github, llm)

    assert run_cli(["validate", "-"], env, stdin=rule_text()).code == 0
    result = run_cli(["run", "-", "--output", "json"], env, stdin=rule_text())

    assert result.code == 0, result.stderr
    assert result.rows()[1]["action"] == "merge"


def test_a_directory_reads_its_rule_files(github: FakeGitHub, llm: FakeLLM, tmp_path: Path) -> None:
    """A directory argument reads its *.yaml and *.yml files, and nothing else."""
    write(tmp_path, rule_text("one"), "one.yaml")
    write(tmp_path, rule_text("two"), "two.yml")
    write(tmp_path, "not a rule", "README.md")
    env = cli_env(github, llm)

    result = run_cli(["compile", str(tmp_path)], env)

    assert result.code == 0, result.stderr
    kinds = [doc["kind"] for doc in yaml.safe_load_all(result.stdout) if doc]
    assert kinds == ["ConfigMap", "WorkflowTemplate", "CronWorkflow"] * 2  # each rule's, in order
    assert run_cli(["validate", str(tmp_path)], env).code == 0


@pytest.mark.parametrize(
    ("target", "files"),
    [
        pytest.param("-", [], id="dash-is-stdout"),
        pytest.param("out/all.yaml", ["out/all.yaml"], id="yaml-name-is-one-file"),
        pytest.param("out", ["out/staging-automerge.cronworkflow.yaml"], id="else-a-directory"),
    ],
)
def test_compile_output_is_unambiguous(
    github: FakeGitHub, llm: FakeLLM, tmp_path: Path, target: str, files: list[str]
) -> None:
    """`-o -` prints; `-o NAME.yaml` writes one file; any other `-o` is a directory."""
    rule = write(tmp_path, rule_text())
    destination = target if target == "-" else str(tmp_path / target)
    result = run_cli(["compile", str(rule), "-o", destination], cli_env(github, llm))

    assert result.code == 0, result.stderr
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.yaml"))
    assert written == sorted(["rule.yaml", *files])
    assert ("kind: CronWorkflow" in result.stdout) is (target == "-")
