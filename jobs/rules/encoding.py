"""The rule and its limits as they reach a compiled pod.

The compiler writes them (``pipelines``) and every step reads them (``jobs.reconcile.steps``):

- the rule as a readable YAML file (:func:`rule_text`), mounted from the rule's own ConfigMap at
  ``AI_OPERATOR_RULE_FILE``, with the SHA-256 of that text in ``AI_OPERATOR_RULE_SHA256``, so
  that a reviewer reads the rule once in the compiled manifests, Argo never sees a rule's
  ``{{pr.number}}`` (a ConfigMap's data is no part of the workflow it substitutes), and a step
  refuses a text that is not the one its run was compiled with (changed since, or cut short);
- or, as before, the rule document as base64 of its compact JSON in ``AI_OPERATOR_RULE``
  (``ai-operator run --rule-from-env`` and manifests compiled by earlier versions); it wins
  when both are set;
- the limits the administrator set for the rule's namespace (:mod:`jobs.rules.limits`) as
  compact, readable JSON (never a token) in ``AI_OPERATOR_LIMITS``, so that a step checks the
  rule it runs against them before it reads or writes.

Pure but for reading the rule file, and light to import: only the models and PyYAML.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ai_operator.jobs.rules.limits import LimitsSpec
from ai_operator.jobs.rules.model import PRReconciliationRule

RULE_ENV = "AI_OPERATOR_RULE"
RULE_FILE_ENV = "AI_OPERATOR_RULE_FILE"
RULE_DIGEST_ENV = "AI_OPERATOR_RULE_SHA256"
LIMITS_ENV = "AI_OPERATOR_LIMITS"
MAX_RULE_FILE_BYTES = 1024 * 1024  # a ConfigMap holds at most 1 MiB


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


class _ReadableDumper(yaml.SafeDumper):
    """Block scalars for text of several lines, no anchors: YAML a person reviews and diffs."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ReadableDumper.add_representer(str, _represent_text)


def readable_yaml(document: object) -> str:
    """``document`` as YAML: keys in their order, text of several lines as block scalars."""
    return yaml.dump(
        document,
        Dumper=_ReadableDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=2**16,  # a line of the instruction stays one line: a changed line is one line
    )


def rule_text(rule: PRReconciliationRule) -> str:
    """The rule file a compiled pod reads: the rule document (no status) as readable YAML."""
    return readable_yaml(rule.to_document())


def rule_digest(text: str) -> str:
    """The SHA-256 (hex) of a rule file's text, which a compiled pod checks before it runs."""
    return hashlib.sha256(text.encode()).hexdigest()


def parse_rule_text(text: str, source: str) -> PRReconciliationRule:
    """The rule in a rule file's ``text``; ``source`` names the file in errors."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem = " ".join(str(exc).split())
        raise StepInputError(f"{source} is not YAML: {problem}") from exc
    try:
        return PRReconciliationRule.model_validate(document)
    except ValueError as exc:
        problem = " ".join(str(exc).split())
        raise StepInputError(f"{source} is not a valid rule: {problem}") from exc


def read_rule_file(path: str, expected_digest: str | None) -> PRReconciliationRule:
    """The rule in the file at ``path``, refused unless its SHA-256 is ``expected_digest``.

    With no digest expected (a rule file a person names) the text is only parsed.
    """
    source = f"{RULE_FILE_ENV} {path}"
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(MAX_RULE_FILE_BYTES + 1)
    except FileNotFoundError:
        raise StepInputError(
            f"{source} does not exist: the rule's ConfigMap is missing (apply it with its "
            "CronWorkflow or CronJob)"
        ) from None
    except OSError as exc:
        raise StepInputError(f"{source} cannot be read: {exc.strerror or exc}") from exc
    if len(data) > MAX_RULE_FILE_BYTES:
        raise StepInputError(f"{source} is larger than a ConfigMap can be (1 MiB)")
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        raise StepInputError(f"{source} is not UTF-8 text: {exc}") from exc
    if expected_digest:
        found = rule_digest(text)
        if found != expected_digest.lower():
            raise StepInputError(
                f"{source} is not the rule this run was compiled with (sha256 {found[:12]}, "
                f"expected {expected_digest[:12]}): the rule's ConfigMap was changed or cut "
                "short since; the next run of the current CronWorkflow or CronJob uses it"
            )
    return parse_rule_text(text, source)


def rule_from_env(env: Mapping[str, str]) -> PRReconciliationRule:
    """The step's rule, or a StepInputError naming the variable.

    ``AI_OPERATOR_RULE`` (base64) when set, else the file at ``AI_OPERATOR_RULE_FILE``, checked
    against ``AI_OPERATOR_RULE_SHA256`` when that is set.
    """
    value = env.get(RULE_ENV, "").strip()
    if value:
        return decode_rule(value)
    path = env.get(RULE_FILE_ENV, "").strip()
    if path:
        return read_rule_file(path, env.get(RULE_DIGEST_ENV, "").strip() or None)
    raise StepInputError(f"neither {RULE_ENV} nor {RULE_FILE_ENV} is set: the step has no rule")


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
