"""The rule as it travels inside a workflow: the ``AI_OPERATOR_RULE`` variable.

The compiler writes it (``pipelines``) and every step reads it (``jobs.reconcile.steps``): the rule
document as base64 of its compact JSON, so that Argo never reads a rule's ``{{pr.number}}`` as one
of its own tags and ``argo resubmit`` repeats the same run. Pure, and light to import: only the
model.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping

from jobs.rules.model import PRReconciliationRule

RULE_ENV = "AI_OPERATOR_RULE"


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
