"""The Kubernetes name rules a rule's own metadata must follow (pure, no cluster).

A rule's namespace becomes the namespace of what it is compiled into; the API server refuses a
namespace that is not a DNS label. The model checks it here so that ``validate`` refuses what
``compile`` and the API server would (:mod:`pipelines.names` uses the same check).
"""

from __future__ import annotations

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
