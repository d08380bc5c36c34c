"""Names Kubernetes accepts: the namespace, object names, references and labels of a manifest.

The API server refuses an object whose namespace is not a DNS label, whose name or a referenced
object's name is not a DNS subdomain, or whose labels break the label syntax; ``kubectl apply``
would say so only at apply time. :func:`manifest_name_problems` finds them in a compiled document
first, each as one line. Pure: no cluster, no file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from ai_operator.jobs.rules.names import DNS_LABEL as _DNS_LABEL
from ai_operator.jobs.rules.names import DNS_LABEL_RULE, MAX_LABEL, namespace_problem

__all__ = [
    "DNS_LABEL_RULE",
    "LABEL_VALUE_RULE",
    "MAX_LABEL",
    "SUBDOMAIN_RULE",
    "label_problems",
    "manifest_name_problems",
    "namespace_problem",
    "subdomain_problem",
]

MAX_SUBDOMAIN = 253
MAX_CRON_NAME = 52  # a CronJob's (and Argo's CronWorkflow's) name leaves room for a run suffix

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")

SUBDOMAIN_RULE = (
    f"at most {MAX_SUBDOMAIN} lowercase letters, digits, '-' and '.', starting and ending with a "
    "letter or digit"
)
LABEL_VALUE_RULE = (
    f"at most {MAX_LABEL} letters, digits, '-', '_' and '.', starting and ending with a letter "
    "or digit"
)

# Keys whose value names another object in the namespace; ``name`` of these mappings too.
_REFERENCE_KEYS = frozenset({"serviceAccountName"})
_REFERENCE_MAPPINGS = frozenset(
    {"secretKeyRef", "configMapKeyRef", "configMapRef", "secretRef", "configMap", "secret"}
)


def subdomain_problem(what: str, name: str) -> str | None:
    """Why ``name`` (an object's name) is not one Kubernetes accepts, or None."""
    if "{{" in name:  # an Argo expression, filled in at run time
        return None
    if len(name) <= MAX_SUBDOMAIN and _DNS_SUBDOMAIN.match(name):
        return None
    return f"{what} {name!r} is not a valid Kubernetes name: {SUBDOMAIN_RULE}"


def label_problems(labels: Mapping[str, str]) -> list[str]:
    """Why each label key or value is not one Kubernetes accepts."""
    problems = []
    for key, value in labels.items():
        prefix, slash, name = key.rpartition("/")
        valid_prefix = not slash or (len(prefix) <= MAX_SUBDOMAIN and _DNS_SUBDOMAIN.match(prefix))
        if not (valid_prefix and len(name) <= MAX_LABEL and _LABEL_NAME.match(name)):
            problems.append(f"label key {key!r} is not a valid Kubernetes label key")
        if value and not (len(value) <= MAX_LABEL and _LABEL_NAME.match(value)):
            problems.append(f"label {key}={value!r} is not a valid label value: {LABEL_VALUE_RULE}")
    return problems


def manifest_name_problems(document: Mapping[str, Any]) -> list[str]:
    """Every name in a compiled CronWorkflow or CronJob that the API server would refuse."""
    metadata = document.get("metadata", {})
    problems = []
    name = str(metadata.get("name", ""))
    if len(name) > MAX_CRON_NAME or not _DNS_LABEL.match(name):
        problems.append(
            f"name {name!r} is not a valid {document.get('kind', 'object')} name: at most "
            f"{MAX_CRON_NAME} lowercase letters, digits and '-'"
        )
    namespace = metadata.get("namespace")
    if namespace is not None:
        problems += [p for p in [namespace_problem(str(namespace))] if p]
    problems += _nested_problems(document)
    return list(dict.fromkeys(problems))


def _nested_problems(node: object) -> Iterator[str]:
    if isinstance(node, list):
        for item in node:
            yield from _nested_problems(item)
        return
    if not isinstance(node, Mapping):
        return
    for key, value in node.items():
        if key == "labels" and isinstance(value, Mapping):
            yield from label_problems({str(k): str(v) for k, v in value.items()})
        elif key in _REFERENCE_KEYS and isinstance(value, str):
            yield from _some(subdomain_problem(key, value))
        elif key in _REFERENCE_MAPPINGS and isinstance(value, Mapping) and "name" in value:
            yield from _some(subdomain_problem(f"{key}.name", str(value["name"])))
        elif key == "imagePullSecrets" and isinstance(value, list):
            for ref in value:
                yield from _some(subdomain_problem("imagePullSecrets", str(ref.get("name", ""))))
        yield from _nested_problems(value)


def _some(problem: str | None) -> Iterator[str]:
    if problem is not None:
        yield problem
