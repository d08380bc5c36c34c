"""`ai-operator run` as a GitHub App and with a personal token, as a user runs it: the App's key
generated here, installation tokens that expire during the pass, the App's bot as the operator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import AI_TOKEN, GITHUB_TOKEN, cli_env, run_cli
from tests.github_app import FakeGitHubApp, rsa_key
from tests.sandbox import FakeCheck, FakeLLM, GitHubWorld

pytestmark = pytest.mark.e2e

KEY = rsa_key()
BOT = "ai-operator-app[bot]"
STAGING = ["auto-merge", "staging"]
RULE = """\
apiVersion: aioperator.io/v1alpha1
kind: PRReconciliationRule
metadata: {name: staging-automerge, namespace: ai-operator-system}
spec:
  repositories: [acme/web]
  selector:
    labels: {include: [auto-merge, staging]}
  instruction: "PR #{{pr.number}}: {{pr.title}}. CI {{pr.ciStatus}}. Merge when green."
  escalation: {labels: [needs-human-approval], createMissingLabels: true}
"""


def populate(world: GitHubWorld) -> None:
    world.add_repository("acme/web", labels=STAGING)
    for number in (1, 2, 3):
        world.add_pull_request("acme/web", number=number, title=f"Green {number}", labels=STAGING)
    world.add_pull_request(
        "acme/web",
        number=4,
        title="Red",
        labels=STAGING,
        rollup_state="FAILURE",
        checks=[FakeCheck("ci", conclusion="FAILURE")],
    )


@pytest.fixture
def app() -> Iterator[tuple[GitHubWorld, FakeGitHubApp, FakeLLM]]:
    world = GitHubWorld(viewer_login=BOT)
    populate(world)
    with (
        FakeGitHubApp(
            world, token=GITHUB_TOKEN, public_pem=KEY.public_pem, token_lifetime=2.0
        ) as github,
        FakeLLM(token=AI_TOKEN) as llm,
    ):
        yield world, github, llm
    assert github.invalid_documents == [] and github.unexpected_errors == []


def app_env(github: FakeGitHubApp, llm: FakeLLM, key_file: Path) -> dict[str, str]:
    env = cli_env(github, llm)
    del env["GITHUB_TOKEN"]
    key_file.write_text(KEY.private_pem)
    env |= {
        "GITHUB_APP_ID": github.app_id,
        "GITHUB_APP_PRIVATE_KEY_FILE": str(key_file),
        "GITHUB_ORGANIZATION": "acme",
        "GITHUB_API_URL": github.api_url,
    }
    return env


def test_a_pass_as_a_github_app_renews_tokens_that_expire_during_it(app, tmp_path: Path) -> None:
    """Tokens live two seconds and the pass takes longer: the pass renews them and every
    request is answered; the writes are the App's bot's; no key or token in the output."""
    world, github, llm = app
    for _ in range(4):
        llm.delay_next(0.6)  # four decisions one at a time: 2.4 s
    rule = tmp_path / "rule.yaml"
    rule.write_text(RULE)
    result = run_cli(
        ["run", str(rule), "--output", "json", "--parallelism", "1"],
        app_env(github, llm, tmp_path / "app.pem"),
    )
    assert result.code == 0, result.stderr
    actions = {row["number"]: row["action"] for row in result.json()["results"]}
    assert actions == {1: "merge", 2: "merge", 3: "merge", 4: "escalate"}
    assert len(github.record.issued) >= 2, "the pass outlived its first token"
    assert github.record.expired_uses == 0 and github.record.refused_jwts == []
    red = world.pull_request("acme/web", 4)
    assert [c.author for c in red.comments] == [BOT]
    output = result.stdout + result.stderr
    assert all(token not in output for token in github.record.issued)
    assert all(line not in output for line in KEY.private_pem.splitlines()[1:-1])


def test_a_rerun_as_the_app_recognizes_its_own_labels_and_changes_nothing(
    app, tmp_path: Path
) -> None:
    """The App's bot is the operator: its escalation label is no change of facts (reused, no
    second comment)."""
    world, github, llm = app
    rule = tmp_path / "rule.yaml"
    rule.write_text(RULE)
    env = app_env(github, llm, tmp_path / "app.pem")
    assert run_cli(["run", str(rule), "--output", "json"], env).code == 0
    llm.requests.clear()
    again = run_cli(["run", str(rule), "--output", "json"], env)
    assert again.code == 0, again.stderr
    [row] = again.json()["results"]
    assert (row["number"], row["reused"], row["operations"]) == (4, True, [])
    assert llm.requests == [] and len(world.pull_request("acme/web", 4).comments) == 1


def test_a_personal_token_still_works_and_wins(app, tmp_path: Path) -> None:
    """GITHUB_TOKEN set beside the App's variables: the token is used, no App token is made."""
    _world, github, llm = app
    rule = tmp_path / "rule.yaml"
    rule.write_text(RULE)
    env = app_env(github, llm, tmp_path / "app.pem") | {"GITHUB_TOKEN": GITHUB_TOKEN}
    result = run_cli(["run", str(rule), "--output", "json"], env)
    assert result.code == 0, result.stderr
    assert github.record.issued == []


def test_neither_a_token_nor_an_app_is_one_line(app, tmp_path: Path) -> None:
    """Nothing to authenticate with: exit 1, one line saying what to set."""
    _world, github, llm = app
    rule = tmp_path / "rule.yaml"
    rule.write_text(RULE)
    env = cli_env(github, llm)
    del env["GITHUB_TOKEN"]
    result = run_cli(["run", str(rule)], env)
    assert result.code == 1
    assert result.stderr.strip().splitlines() == [
        "error: neither GITHUB_TOKEN nor GITHUB_APP_ID is set: export a GitHub token, or a "
        "GitHub App's id and private key (GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_FILE)"
    ]


def test_github_enterprise_server_urls_follow_its_host(tmp_path: Path) -> None:
    """GITHUB_GRAPHQL_URL https://HOST/api/graphql: REST at /api/v3 beside it (the App's token
    there), and the PRs' links on the server's own host; nothing goes to github.com."""
    world = GitHubWorld(viewer_login=BOT, web_url="https://ghe.acme.io")
    populate(world)
    rule = tmp_path / "rule.yaml"
    rule.write_text(RULE)
    with (
        FakeGitHubApp(world, token=GITHUB_TOKEN, public_pem=KEY.public_pem) as github,
        FakeLLM(token=AI_TOKEN) as llm,
    ):
        env = app_env(github, llm, tmp_path / "app.pem")
        del env["GITHUB_API_URL"]
        env["GITHUB_GRAPHQL_URL"] = github.url.replace("/graphql", "/api/graphql")
        result = run_cli(["run", str(rule), "--output", "json"], env)
    assert result.code == 0, result.stderr
    urls = sorted(row["url"] for row in result.json()["results"])
    assert urls == [f"https://ghe.acme.io/acme/web/pull/{n}" for n in (1, 2, 3, 4)]
    assert github.record.paths == [
        "/api/v3/orgs/acme/installation",
        "/api/v3/app/installations/77/access_tokens",
        "/api/v3/app",
    ]
