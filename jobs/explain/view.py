"""How an explanation is shown: sections in the order a pass sees them, or JSON.

Pure formatting: builds strings from an :class:`~jobs.explain.explanation.Explanation`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ai_operator.jobs.explain.explanation import Explanation

HELD, BLOCKS = "ok", "NO"


def as_text(explanation: Explanation, github: str) -> str:
    """The verdict, then the selector, the safety rules, the memory, people, limits, schedule."""
    e = explanation
    lines = [
        f"{e.pr} under {e.rule} (head {e.head[:12]}, read from {github})",
        f"now: {e.summary}",
        "",
        "selector:",
        *(f"  {HELD if c.held else BLOCKS:<3} {c.name}: {c.detail}" for c in e.selector),
        "safety rules of a merge:",
        *(
            f"  {HELD:<3} {g.name}: {g.held}"
            if g.block is None
            else f"  {BLOCKS:<3} {g.name}: {g.block.reason} ({g.block.guardrail})"
            for g in e.safety
        ),
        f"recorded decision: {_recorded(e)}",
        "people: "
        + (
            "; ".join(b.reason for b in e.people)
            if e.people
            else "nothing of the operator's undone"
        ),
        f"limits: {e.cap.reason if e.cap else 'no cap reached'}",
        f"next scheduled pass: {_next(e)}",
    ]
    return "\n".join(lines) + "\n"


def as_json(explanation: Explanation, github: str) -> str:
    """The explanation as one JSON document."""
    e = explanation
    recorded = e.recorded
    document: dict[str, Any] = {
        "rule": e.rule,
        "pullRequest": e.pr,
        "url": e.url,
        "head": e.head,
        "github": github,
        "verdict": e.verdict,
        "action": e.action.value if e.action else None,
        "reason": e.reason,
        "summary": e.summary,
        "selector": [{"clause": c.name, "held": c.held, "detail": c.detail} for c in e.selector],
        "safety": [
            {"rule": g.name, "held": g.block is None}
            | ({"on": g.held} if g.block is None else _block(g.block))
            for g in e.safety
        ],
        "recorded": {
            "decision": recorded.decision.action.value if recorded.decision else None,
            "reason": recorded.decision.reason if recorded.decision else None,
            "decidedAt": _iso(recorded.decided_at),
            "reused": recorded.reused,
            "whyNot": recorded.why_not,
        },
        "people": [_block(b) for b in e.people],
        "cap": _block(e.cap) if e.cap else None,
        "schedule": e.schedule,
        "nextPass": e.next_pass.astimezone(UTC).isoformat() if e.next_pass else None,
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def _block(block: Any) -> dict[str, Any]:
    return {"guardrail": block.guardrail, "reason": block.reason, "transient": block.transient}


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _recorded(e: Explanation) -> str:
    recorded = e.recorded
    if recorded.decision is None:
        return "none (the model is asked)"
    decision = recorded.decision
    made = f"{decision.action.value} at {_iso(recorded.decided_at)}: {decision.reason}"
    return f"{made}; reused" if recorded.reused else f"{made}; not reused: {recorded.why_not}"


def _next(e: Explanation) -> str:
    if e.next_pass is None:
        return e.schedule
    return f"{e.next_pass.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')} ({e.schedule})"
