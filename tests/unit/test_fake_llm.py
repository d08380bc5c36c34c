"""The fake LLM's default brain and its wire behaviour that the clients' tests do not cover."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from pydantic import SecretStr

from ai_operator.jobs.clients.ai import make_decision_client
from ai_operator.jobs.config import AIConfig
from ai_operator.jobs.policy.verdict import Verdict, parse_verdict, verdict_schema
from ai_operator.jobs.rules.model import Action, AIProvider
from tests.sandbox import FakeLLM, LLMRequest, default_brain

ALL = [a.value for a in Action]


def make_pr(**overrides: Any) -> dict[str, Any]:
    pr = {"number": 7, "title": "Bump lib", "ciStatus": "SUCCESS", "mergeable": True}
    return pr | {"isDraft": False, "labels": []} | overrides


def prompt(pr: dict[str, Any]) -> str:
    facts = json.dumps({"pr": pr, "repository": "acme/api"}, indent=2)
    return f"Settle this pull request.\n<pull_request_data>\n{facts}\n</pull_request_data>\n"


def request(user: str, permitted: list[str]) -> LLMRequest:
    schema = verdict_schema(Action(a) for a in permitted)
    return LLMRequest("openai", "m", "", user, schema, None, None, {}, body={})


@pytest.mark.parametrize(
    ("pr", "permitted", "action"),
    [
        pytest.param(make_pr(), ALL, "merge", id="green-and-mergeable-merges"),
        pytest.param(make_pr(title="[close] stale"), ALL, "close", id="close-tag-closes"),
        pytest.param(make_pr(ciStatus="PENDING"), ALL, "wait", id="pending-ci-waits"),
        pytest.param(make_pr(ciStatus="FAILURE"), ALL, "escalate", id="red-ci-escalates"),
        pytest.param(make_pr(mergeable=False), ALL, "escalate", id="conflict-escalates"),
        pytest.param(make_pr(), ["escalate", "wait"], "escalate", id="merge-forbidden-escalates"),
        pytest.param(make_pr(title="[close]"), ["wait"], "wait", id="only-wait-allowed"),
    ],
)
def test_default_brain_policy(pr: dict[str, Any], permitted: list[str], action: str) -> None:
    """The default brain's small policy, kept inside the schema's permitted actions."""
    answer = default_brain(request(prompt(pr), permitted))
    verdict = parse_verdict(answer, (Action(a) for a in permitted))
    assert isinstance(verdict, Verdict)
    assert verdict.action.value == action
    assert (verdict.comment is not None) == (action in {"close", "escalate"})


def test_default_brain_without_pull_request_data_escalates() -> None:
    """A prompt without the data block gets an escalation, not a guess."""
    assert default_brain(request("Decide.", ALL))["action"] == "escalate"


@pytest.mark.parametrize(
    "provider", [pytest.param(p, id=p.value) for p in (AIProvider.ANTHROPIC, AIProvider.OPENAI)]
)
def test_clients_and_default_brain_end_to_end(provider: AIProvider) -> None:
    """A real client, the fake and the default brain produce a valid verdict."""
    with FakeLLM() as fake:
        url = fake.anthropic_url if provider is AIProvider.ANTHROPIC else fake.openai_url
        model = "claude-sonnet-4-6" if provider is AIProvider.ANTHROPIC else "gpt-4.1-mini"
        config = AIConfig(provider, url, model, SecretStr("sk-test-ai"), None, 512, 5.0)
        answer = make_decision_client(config).ask("sys", prompt(make_pr()), verdict_schema(Action))
    assert parse_verdict(answer, Action) == Verdict(
        action=Action.MERGE, reason="CI passed and the pull request is mergeable.", labels=()
    )


@pytest.mark.parametrize(
    ("header", "status"),
    [
        pytest.param({"x-api-key": "sk-test-ai"}, 200, id="x-api-key"),
        pytest.param({"Authorization": "Bearer sk-test-ai"}, 200, id="bearer"),
        pytest.param({"X-API-KEY": "sk-other"}, 401, id="wrong-key"),
    ],
)
def test_anthropic_route_accepts_either_key_header(header: dict[str, str], status: int) -> None:
    """Anthropic's route takes the key as x-api-key or as a bearer token."""
    with FakeLLM() as fake:
        body = json.dumps({"model": "m", "max_tokens": 64, "messages": []}).encode()
        sent = urllib.request.Request(f"{fake.anthropic_url}/v1/messages", body, header)
        try:
            with urllib.request.urlopen(sent, timeout=5) as reply:
                got = reply.status
        except urllib.error.HTTPError as exc:
            got = exc.code
            assert json.load(exc)["error"]["type"] == "authentication_error"
            exc.close()
    assert got == status
