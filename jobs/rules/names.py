"""The Kubernetes name rules a rule's own metadata must follow (pure, no cluster).

A rule's namespace becomes the namespace of what it is compiled into; the API server refuses a
namespace that is not a DNS label. The model checks it here so that ``validate`` refuses what
``compile`` and the API server would (:mod:`pipelines.names` uses the same check).
"""

from __future__ import annotations

import hashlib
import re

MAX_LABEL = 63

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_LABEL_RULE = (
    f"at most {MAX_LABEL} lowercase letters, digits and '-', starting and ending with a letter "
    "or digit"
)


def namespace_problem(namespace: str) -> str | None:
    """Why ``namespace`` is not one Kubernetes accepts, or None."""
    if len(namespace) <= MAX_LABEL and DNS_LABEL.match(namespace):
        return None
    return f"namespace {namespace!r} is not a valid Kubernetes namespace: {DNS_LABEL_RULE}"


_NOT_NAME_CHAR = re.compile(r"[^a-z0-9-]+")
_HASH_CHARS = 8
OUTCOME_INDEX_PREFIX = "ai-operator-memo-"
"""How the names of a rule's outcome index ConfigMaps begin (:mod:`jobs.clients.outcome_index`)."""
MAX_CONFIG_MAP_NAME = 63


def bounded_name(name: str, limit: int, prefix: str = "") -> str:
    """``prefix + name`` as a DNS label of at most ``limit`` characters.

    A name that must change (too long, or with dots) keeps its start and gains a short hash of
    the whole, so two long rule names that share a start never collide.
    """
    wanted = prefix + name
    if len(wanted) <= limit and DNS_LABEL.match(wanted):
        return wanted
    digest = hashlib.sha256(wanted.encode()).hexdigest()[:_HASH_CHARS]
    cleaned = _NOT_NAME_CHAR.sub("-", wanted.lower())
    head = cleaned[: limit - _HASH_CHARS - 1].strip("-")
    return f"{head}-{digest}" if head else digest


def outcome_index_prefix(rule: str) -> str:
    """The prefix of the named rule's outcome index ConfigMaps (``<prefix>-0`` .. ``-f``).

    A ConfigMap name is at most 63 characters here, so two are left for ``-`` and the shard.
    """
    return bounded_name(rule, MAX_CONFIG_MAP_NAME - 2, prefix=OUTCOME_INDEX_PREFIX)
