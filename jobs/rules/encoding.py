"""The rule and its limits as they travel inside a workflow, in two environment variables.

The compiler writes them (``pipelines``) and every step reads them (``jobs.reconcile.steps``): the
rule document as base64 of its compact JSON, so that Argo never reads a rule's ``{{pr.number}}`` as
one of its own tags and ``argo resubmit`` repeats the same run; the limits the administrator set
for the rule's namespace (:mod:`jobs.rules.limits`) as compact, readable JSON (never a token), so
that a step checks the rule it runs against them before it reads or writes. Pure, and light to
import: only the models.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping

from pydantic import ValidationError

from jobs.rules.limits import LimitsSpec
from jobs.rules.model import PRReconciliationRule

RULE_ENV = "AI_OPERATOR_RULE"
LIMITS_ENV = "AI_OPERATOR_LIMITS"


class StepInputError(Exception):
    """A step's input (rule, reference, decision list) is malformed; the message says which."""


def encode_rule(rule: PRReconciliationRule) -> str:
    """The value of ``AI_OPERATOR_RULE`` for ``rule``."""
    document = json.dumps(rule.to_document(), sort_keys=True, separators=(",", ":"))
    return base64.b64encode(document.encode()).decode()


def decode_rule(value: str) -> PRReconciliationRule:
    """The rule carried in ``AI_OPERATOR_RULE``."""
    try:
        document = json.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise StepInputError(f"{RULE_ENV} is not base64-encoded JSON: {exc}") from exc
    try:
        return PRReconciliationRule.model_validate(document)
    except ValueError as exc:
        raise StepInputError(f"{RULE_ENV} is not a valid rule: {exc}") from exc


def rule_from_env(env: Mapping[str, str]) -> PRReconciliationRule:
    """The step's rule, or a StepInputError naming the variable."""
    value = env.get(RULE_ENV, "").strip()
    if not value:
        raise StepInputError(f"{RULE_ENV} is not set: the step has no rule")
    return decode_rule(value)


def encode_limits(limits: LimitsSpec) -> str:
    r"""The value of ``AI_OPERATOR_LIMITS``: compact JSON of what a pod checks.

    The namespaces an object governs are left out (the pod's namespace is already chosen), and
    ``{{`` is written ``\u007b\u007b`` so that Argo never reads an endpoint as one of its tags.
    """
    document = limits.model_dump(mode="json", exclude={"namespaces"}, exclude_none=True)
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return text.replace("{{", "\\u007b\\u007b")


def decode_limits(value: str, source: str = LIMITS_ENV) -> LimitsSpec:
    """The limits in ``value`` (JSON or YAML's JSON subset); ``source`` names it in errors."""
    try:
        document = json.loads(value)
    except ValueError as exc:
        raise StepInputError(f"{source} is not JSON: {exc}") from exc
    return limits_document(document, source)


def limits_document(document: object, source: str) -> LimitsSpec:
    """Limits from a decoded document: a ``PRReconciliationLimits`` object or its bare spec."""
    if isinstance(document, dict) and isinstance(document.get("spec"), dict):
        document = document["spec"]
    try:
        return LimitsSpec.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or '(top)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise StepInputError(f"{source} holds no valid limits: {problems}") from exc
