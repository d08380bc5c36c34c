"""Ask: render the prompt, ask the model, and pass its answer through the guardrails.

Errors: :class:`~jobs.reconcile.results.PullRequestFailure` when the template cannot render, the
model cannot be asked at all (unreachable, refused credentials), or anything else fails while
rendering, asking, parsing or deciding (an SDK answering an unexpected shape): that is no answer
about this pull request, and a later pass asks again. An unusable answer is not an error: it
becomes an ``InvalidVerdict`` and so the rule's fallback.
"""

from __future__ import annotations

from ai_operator.jobs.clients.ai.errors import AIAuthError, AIError, AIResponseInvalid
from ai_operator.jobs.policy.decision import Decision, decide
from ai_operator.jobs.policy.prompt import build_prompt
from ai_operator.jobs.policy.snapshot import PullRequestSnapshot
from ai_operator.jobs.policy.verdict import InvalidVerdict, Verdict, parse_verdict, verdict_schema
from ai_operator.jobs.reconcile.ports import Decider
from ai_operator.jobs.reconcile.results import PullRequestFailure
from ai_operator.jobs.rules.model import PRReconciliationRule
from ai_operator.jobs.rules.template import TemplateError


def ask(
    rule: PRReconciliationRule, pr: PullRequestSnapshot, ai: Decider
) -> Verdict | InvalidVerdict:
    """The model's verdict on ``pr``; an unusable answer is an InvalidVerdict."""
    try:
        prompt = build_prompt(rule.spec, pr)
    except TemplateError as exc:
        raise PullRequestFailure(str(exc), kind="template", retryable=False) from exc
    permitted = rule.spec.permitted_actions
    try:
        answer = ai.ask(prompt.system, prompt.user, verdict_schema(permitted))
    except AIResponseInvalid as exc:
        return InvalidVerdict(problem=str(exc))
    except AIError as exc:
        kind = "auth" if isinstance(exc, AIAuthError) else "ai"
        raise PullRequestFailure(f"AI: {exc}", kind=kind, retryable=exc.retryable) from exc
    return parse_verdict(answer, permitted)


def decide_pull_request(
    rule: PRReconciliationRule, pr: PullRequestSnapshot, ai: Decider
) -> Decision:
    """Ask the model about ``pr`` and pass its answer through the guardrails.

    Whatever fails on the way is this pull request's :class:`PullRequestFailure`, never the pass's.
    """
    try:
        return decide(rule, pr, ask(rule, pr, ai), pr.fingerprint())
    except PullRequestFailure:
        raise
    except Exception as exc:  # one PR's fault must not stop the pass
        message = f"deciding failed: {type(exc).__name__}: {exc}"
        raise PullRequestFailure(message, kind="internal", retryable=False) from exc
