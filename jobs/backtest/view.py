"""How a backtest is shown: a confusion table for people, JSON for tools.

Pure formatting: builds strings from a :class:`~jobs.backtest.run.Backtest`, writes nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ai_operator.jobs.backtest.run import Backtest
from ai_operator.jobs.policy.backtest import HAPPENED, Agreement

_CORNER = "decided \\ happened"


def as_table(result: Backtest) -> str:
    """The confusion table, the agreement, the cost and every disagreement."""
    score, window = result.score, result.window
    lines = [
        f"backtest of {result.rule}",
        f"window: {_when(window.since)} .. {_when(window.until)}",
        f"GitHub: {result.github}",
        f"model: {result.model}",
        f"{len(result.compared)} pull requests merged or closed in the window that the rule "
        f"covers (of {result.seen} found)",
        "",
        f"{_CORNER:<20}" + "".join(f"{h.value:>8}" for h in HAPPENED),
    ]
    for action in score.confusion:
        counts = score.confusion[action]
        lines.append(f"{action.value:<20}" + "".join(f"{counts[h]:>8}" for h in HAPPENED))
    lines += ["", f"agreement: {_agreement(score.overall)}"]
    lines += [f"  {a.value:<10}{_agreement(score.by_action[a])}" for a in score.confusion]
    lines += ["", f"cost: {_cost(result)}"]
    if score.disagreements:
        lines += ["", "disagreements:"]
        for row in score.disagreements:
            lines.append(
                f"  {row.url}: decided {row.decided.value}, people {row.happened.value} it: "
                f"{row.reason}"
            )
    if result.unanswered:
        lines += ["", "not decided (left out of the figures):"]
        lines += [f"  {u.url}: {u.error}" for u in result.unanswered]
    if result.recorded:
        lines += ["", f"answers recorded in {result.recorded}"]
    return "\n".join(lines) + "\n"


def as_json(result: Backtest) -> str:
    """``{"rule", "window", "prs", "agreement", "confusion", "disagreements", "cost"}``."""
    score = result.score
    document: dict[str, Any] = {
        "rule": result.rule,
        "window": {"since": _when(result.window.since), "until": _when(result.window.until)},
        "prs": len(result.compared),
        "agreement": {
            "overall": score.overall.rate,
            "agreed": score.overall.agreed,
            "of": score.overall.of,
            "byAction": {
                action.value: _agreement_json(score.by_action[action]) for action in score.confusion
            },
        },
        "confusion": {
            action.value: {h.value: n for h, n in score.confusion[action].items()}
            for action in score.confusion
        },
        "disagreements": [
            {
                "url": row.url,
                "decided": row.decided.value,
                "happened": row.happened.value,
                "reason": row.reason,
            }
            for row in score.disagreements
        ],
        "cost": {
            "aiCalls": result.cost.ai.calls,
            "aiTokens": result.cost.ai.tokens(),
            "githubRequests": result.cost.github_requests,
        },
        "notDecided": [{"url": u.url, "error": u.error} for u in result.unanswered],
        "github": result.github,
        "model": result.model,
        "recorded": result.recorded,
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _agreement(agreement: Agreement) -> str:
    if agreement.rate is None:
        return "-"
    return f"{agreement.agreed} of {agreement.of} ({agreement.rate:.1%})"


def _agreement_json(agreement: Agreement) -> dict[str, Any]:
    return {"agreed": agreement.agreed, "of": agreement.of, "rate": agreement.rate}


def _cost(result: Backtest) -> str:
    usage = result.cost.ai
    tokens = usage.input_tokens + usage.output_tokens
    return (
        f"{usage.calls} AI calls, {tokens} tokens (input {usage.input_tokens}, output "
        f"{usage.output_tokens}, cached {usage.cached_tokens}), "
        f"{result.cost.github_requests} GitHub requests"
    )
