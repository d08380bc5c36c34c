"""Hidden markers in this tool's PR comments, which make a rerun post nothing twice.

Every comment ends with an HTML comment naming the rule, the action and the head commit it was
decided for. Before commenting, a pass looks for the same marker on the PR; if one is there, the
comment was already posted (by an earlier pass, a retry, or an ``argo resubmit``).

What the operator writes is the operator's: the only marker in its comment is the one it puts
there. Text it did not write (the model's comment and reason, a guardrail's words that quote the
PR) passes :func:`without_hidden_text` first, so that it can carry neither a forged marker (which
would silence another rule's comments on the PR) nor any HTML comment (an unclosed ``<!--``
would hide the real marker, and the next pass would comment again). Pure.
"""

from __future__ import annotations

import re

_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)  # an unclosed one runs to the end
_MARKER_RE = re.compile(r"<!-- ai-operator:(?P<key>[a-z]+=[^\s>]+(?: [a-z]+=[^\s>]+)*) -->")


def make_marker(rule: str, action: str, head_oid: str) -> str:
    """The marker key for a comment of ``rule`` taking ``action`` on commit ``head_oid``."""
    safe_rule = re.sub(r"[^A-Za-z0-9_./-]", "_", rule)
    return f"rule={safe_rule} action={action} head={head_oid}"


def render_marker(key: str) -> str:
    """The invisible HTML comment that carries ``key`` in a comment body."""
    return f"<!-- ai-operator:{key} -->"


def find_markers(text: str) -> frozenset[str]:
    """Every marker key in a comment body."""
    return frozenset(m.group("key") for m in _MARKER_RE.finditer(text))


def without_hidden_text(text: str) -> str:
    """``text`` without HTML comments (markers included), however they are nested or split.

    Removing one comment can join the pieces around it into another (``<!<!-- -->-- x -->``):
    removal repeats until nothing changes.
    """
    previous = None
    while previous != text:
        previous, text = text, _HTML_COMMENT.sub("", text)
    return text
