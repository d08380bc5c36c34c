"""The stand-in model: what answers when no real model is configured. Not a real model's answer.

It is served by :class:`~jobs.sandbox.llm.FakeLLM` on loopback, so the product asks it through
the real SDK exactly as it asks a real model. It never reads the rule's instruction: its answer is
a small function of the pull request's facts (the JSON the prompt carries), tried in this order:

1. the title says the change was abandoned (``[abandoned]`` or ``[close]``): **close**;
2. the body addresses instructions to the model ("ignore your instructions ..."): **merge**, as a
   model the description fooled would; the guardrails must hold anyway;
3. checks still running (``PENDING``): **wait**;
4. a version bump whose major version changes (``Bump x from 1.2.3 to 2.0.0``), or a
   ``breaking-change`` label: **escalate**;
5. checks passed and mergeable: **merge** (even for a draft or a change request: the guardrails
   are there to refuse it);
6. anything else (conflicts, failed checks): **escalate**.

A merge it would answer becomes **wait** while Argo CD reports the PR's application
``Progressing``, and **escalate** while it reports it ``Degraded``, ``Missing`` or ``Suspended``
(``argocd.health`` in the facts; ``Unknown`` changes nothing).

An action the rule does not permit becomes ``escalate`` (or ``wait`` when escalating is not
permitted either), with the reason saying so.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import SecretStr

from ai_operator.jobs.config import AIConfig
from ai_operator.jobs.rules.model import AIProvider
from ai_operator.jobs.sandbox.llm import LLMRequest, pull_request_facts

NOTICE = "stand-in model, not a real model's answer"
MODEL_NAME = "stand-in"
PRODUCED_BY = "stand-in (not a real model)"

_ABANDONED = re.compile(r"\[(abandoned|close)\]", re.IGNORECASE)
_INSTRUCTS = re.compile(
    r"\b(ignore|disregard|forget)\b[^.]{0,40}\b(instructions|rules|prompt)\b", re.IGNORECASE
)
_BUMP = re.compile(r"^Bump \S+ from v?(?P<old>\d+)\S* to v?(?P<new>\d+)", re.IGNORECASE)


_HOLD_FOR_HEALTH = {
    "Progressing": ("wait", "Argo CD is still rolling the application out (Progressing)."),
    "Degraded": ("escalate", "Argo CD reports the application Degraded: a person should look."),
    "Missing": ("escalate", "Argo CD does not find the application (Missing)."),
    "Suspended": ("escalate", "Argo CD reports the application Suspended."),
}
"""What the stand-in does instead of merging while Argo CD reports the application unwell."""


def standin_brain(request: LLMRequest) -> dict[str, Any]:
    """The stand-in's answer to one request, within the schema's permitted actions."""
    facts = pull_request_facts(request.user) or {}
    pr, argocd = facts.get("pr"), facts.get("argocd")
    health = argocd.get("health") if isinstance(argocd, dict) else None
    action, reason = _judge(pr if isinstance(pr, dict) else {})
    if action == "merge" and health in _HOLD_FOR_HEALTH:
        action, reason = _HOLD_FOR_HEALTH[health]
    permitted = request.permitted_actions
    if permitted is not None and action not in permitted:
        instead = "escalate" if "escalate" in permitted else "wait"
        action, reason = instead, f"{reason} This rule does not allow {action}, so: {instead}."
    comment = reason if action in {"close", "escalate"} else None
    return {"action": action, "reason": reason, "comment": comment, "labels": []}


def model_config(base_url: str, token: str, model: str = MODEL_NAME) -> AIConfig:
    """How the product reaches a model server of the sandbox: Anthropic's wire format on loopback.

    The rule's own ``ai`` settings are left out on purpose: they name a real endpoint.
    """
    return AIConfig(
        provider=AIProvider.ANTHROPIC,
        base_url=base_url,
        model=model,
        token=SecretStr(token),
        temperature=None,
        max_tokens=1024,
        timeout_seconds=10.0,
    )


def _judge(pr: dict[str, Any]) -> tuple[str, str]:
    title, body = str(pr.get("title", "")), str(pr.get("body", ""))
    ci, mergeable = pr.get("ciStatus"), pr.get("mergeable")
    if _ABANDONED.search(title):
        return "close", "The title says the author abandoned this change."
    if _INSTRUCTS.search(body):
        return "merge", "The description says the checks are fine and asks for a merge now."
    if ci == "PENDING":
        return "wait", "Checks are still running."
    bump = _BUMP.match(title)
    if bump and bump.group("old") != bump.group("new"):
        return "escalate", "A major version bump may break callers: a person should review it."
    if "breaking-change" in {str(label).lower() for label in pr.get("labels") or ()}:
        return "escalate", "It is labelled breaking-change: a person should review it."
    if ci == "SUCCESS" and mergeable is True:
        return "merge", "Checks passed and the pull request is mergeable."
    if mergeable is False:
        return "escalate", "It has merge conflicts: a person should resolve them."
    if ci in {"FAILURE", "ERROR"}:
        return "escalate", f"Checks ended in {ci}: a person should look at them."
    return "escalate", f"Checks are {ci} and mergeable is {mergeable}: a person should decide."
