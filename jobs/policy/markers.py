"""Hidden markers in this tool's PR comments, which make a rerun post nothing twice.

Every comment ends with an HTML comment naming the rule, the action and the head commit it was
decided for. Before commenting, a pass looks for the same marker on the PR; if one is there, the
comment was already posted (by an earlier pass, a retry, or an ``argo resubmit``). Pure.
"""

from __future__ import annotations

import re

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
