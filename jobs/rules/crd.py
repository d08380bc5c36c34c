"""The CustomResourceDefinitions, generated from the models: rules and the administrator's limits.

Two CRDs: PRReconciliationRule (namespaced, from :mod:`jobs.rules.model`) and
PRReconciliationLimits (cluster-scoped, from :mod:`jobs.rules.limits`), each written to its file
in ``crds/`` (:data:`CRDS` maps each path to its document).

:func:`crd_document` turns ``RuleSpec.model_json_schema()`` into a Kubernetes *structural* schema
(apiextensions.k8s.io/v1): every ``$ref`` is inlined, ``anyOf [X, null]`` becomes ``X`` (the API
server prunes nulls of fields that are not nullable, and the model reads a missing field as
``None``), ``additionalProperties: false`` is dropped (the API server prunes unknown fields, and
``kubectl``'s strict field validation reports them), JSON Schema's numeric ``exclusiveMinimum``
becomes OpenAPI v3's boolean form, ``examples`` becomes ``example`` and ``uniqueItems`` becomes a
set-typed list. ``scripts/generate-crd`` writes the result to :data:`CRD_PATH`; a test fails when
that file drifts from the model.

Pure: builds dictionaries and text, reads and writes no file, talks to no cluster.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from ai_operator.jobs.rules import limits
from ai_operator.jobs.rules.model import (
    API_GROUP,
    API_VERSION,
    KIND,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    RuleSpec,
    RuleStatus,
)

CRD_NAME = f"{PLURAL}.{API_GROUP}"
CRD_PATH = f"crds/{CRD_NAME}.yaml"
LIMITS_CRD_NAME = f"{limits.PLURAL}.{API_GROUP}"
LIMITS_CRD_PATH = f"crds/{LIMITS_CRD_NAME}.yaml"
CATEGORIES = ("ai-operator",)

HEADER = (
    "# Generated from the models (jobs/rules/model.py, jobs/rules/limits.py) by\n"
    "# scripts/generate-crd: do not edit.\n"
    "# Regenerate with `python scripts/generate-crd`; `python scripts/generate-crd --check`\n"
    "# fails when this file differs from the model.\n"
)

JsonSchema = dict[str, Any]

# Keys that mean nothing to a structural schema, or that pydantic only adds for its own use.
_DROPPED_KEYS = frozenset({"title", "$defs"})

_KEY_ORDER = (
    "type",
    "format",
    "description",
    "enum",
    "default",
    "example",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minItems",
    "maxItems",
    "x-kubernetes-list-type",
    "items",
    "required",
    "properties",
)

_DATE_TIME: JsonSchema = {"type": "string", "format": "date-time"}


def crd_document() -> dict[str, Any]:
    """Build the whole CustomResourceDefinition, as a document ``kubectl apply`` accepts."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME},
        "spec": {
            "group": API_GROUP,
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
                "categories": list(CATEGORIES),
            },
            "scope": "Namespaced",
            "versions": [_version()],
        },
    }


def limits_crd_document() -> dict[str, Any]:
    """The cluster-scoped PRReconciliationLimits CRD: only cluster roles can write its objects."""
    source = limits.LimitsSpec.model_json_schema()
    spec = to_structural(source, source.get("$defs", {}))
    schema = {
        "type": "object",
        "description": (
            "What the rules of some namespaces may reach (repositories, actions, model "
            "endpoints) and which Secret holds their tokens; written by cluster administrators."
        ),
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": LIMITS_CRD_NAME},
        "spec": {
            "group": API_GROUP,
            "names": {
                "kind": limits.KIND,
                "listKind": f"{limits.KIND}List",
                "plural": limits.PLURAL,
                "singular": limits.SINGULAR,
                "shortNames": list(limits.SHORT_NAMES),
                "categories": list(CATEGORIES),
            },
            "scope": "Cluster",
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "additionalPrinterColumns": _limits_printer_columns(),
                }
            ],
        },
    }


CRDS = {CRD_PATH: crd_document, LIMITS_CRD_PATH: limits_crd_document}
"""Each CRD file (relative to the checkout) and the function building its document."""


def render_crd_yaml(document: dict[str, Any] | None = None) -> str:
    """Render a CRD (default: the rules') as the YAML text kept in ``crds/``, with its header."""
    body = yaml.safe_dump(
        document if document is not None else crd_document(),
        sort_keys=False,
        width=100,
        allow_unicode=True,
    )
    return HEADER + body


def _version() -> dict[str, Any]:
    return {
        "name": API_VERSION,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": rule_schema()},
        "subresources": {"status": {}},
        "additionalPrinterColumns": _printer_columns(),
    }


def rule_schema() -> JsonSchema:
    """Build the openAPIV3Schema of a whole PRReconciliationRule object."""
    return {
        "type": "object",
        "description": (
            "A rule: which GitHub pull requests it covers and, in natural language, how an AI "
            "should settle them (merge, close, escalate to a human, or wait)."
        ),
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema(),
            "status": status_schema(),
        },
    }


def spec_schema() -> JsonSchema:
    """``RuleSpec``'s JSON schema as a structural schema."""
    source = RuleSpec.model_json_schema()
    return to_structural(source, source.get("$defs", {}))


def status_schema() -> JsonSchema:
    """``RuleStatus``'s JSON schema as a structural schema, without defaults.

    The controller writes every field it sets, so the API server has nothing to default; fields
    a newer controller adds are kept, not pruned.
    """
    source = RuleStatus.model_json_schema()
    schema = _without_defaults(to_structural(source, source.get("$defs", {})))
    return {
        **schema,
        "description": "Runtime status, written by the controller.",
        "x-kubernetes-preserve-unknown-fields": True,
    }


def _without_defaults(node: JsonSchema) -> JsonSchema:
    result = {key: value for key, value in node.items() if key != "default"}
    if "properties" in result:
        result["properties"] = {
            name: _without_defaults(child) for name, child in result["properties"].items()
        }
    for key in ("items", "additionalProperties"):
        if isinstance(result.get(key), dict):
            result[key] = _without_defaults(result[key])
    return result


def to_structural(schema: JsonSchema, defs: dict[str, JsonSchema]) -> JsonSchema:
    """Convert one pydantic JSON schema node (and its children) to a structural schema node."""
    node = _resolve(schema, defs)
    node = _drop_null(node, defs)
    result: JsonSchema = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS or (key == "default" and value is None):
            continue
        result.update(_convert_keyword(key, value, defs))
    return _ordered(result)


def _ordered(node: JsonSchema) -> JsonSchema:
    """Keywords in a fixed, readable order: type first, children last."""
    rank = {key: index for index, key in enumerate(_KEY_ORDER)}
    return dict(sorted(node.items(), key=lambda item: rank.get(item[0], len(rank))))


def _resolve(schema: JsonSchema, defs: dict[str, JsonSchema]) -> JsonSchema:
    """Inline a ``$ref``; keywords beside it (description, default) win over the target's."""
    if "$ref" not in schema:
        return schema
    name = schema["$ref"].rsplit("/", 1)[-1]
    target = copy.deepcopy(defs[name])
    siblings = {key: value for key, value in schema.items() if key != "$ref"}
    return _resolve({**target, **siblings}, defs)


def _drop_null(schema: JsonSchema, defs: dict[str, JsonSchema]) -> JsonSchema:
    """``anyOf [X, {type: null}]`` -> ``X`` carrying the outer keywords (description, default)."""
    options = schema.get("anyOf")
    if options is None:
        return schema
    kept = [option for option in options if option.get("type") != "null"]
    if len(kept) != 1:
        raise ValueError(f"cannot express anyOf {options!r} in a structural schema")
    outer = {key: value for key, value in schema.items() if key != "anyOf"}
    return {**_resolve(kept[0], defs), **outer}


def _convert_keyword(key: str, value: Any, defs: dict[str, JsonSchema]) -> JsonSchema:
    if key == "properties":
        return {key: {name: to_structural(sub, defs) for name, sub in value.items()}}
    if key == "items":
        return {key: to_structural(value, defs)}
    if key == "additionalProperties":
        # A map's value schema is kept; ``true``/``false`` say nothing a structural schema needs.
        return {key: to_structural(value, defs)} if isinstance(value, dict) else {}
    if key == "exclusiveMinimum":
        return {"minimum": value, "exclusiveMinimum": True}
    if key == "exclusiveMaximum":
        return {"maximum": value, "exclusiveMaximum": True}
    if key == "examples":
        return {"example": value[0]}
    if key == "uniqueItems":
        # Structural schemas forbid uniqueItems: true; a set-typed list says the same thing.
        return {"x-kubernetes-list-type": "set"} if value else {}
    return {key: copy.deepcopy(value)}


def _column(name: str, kind: str, path: str, description: str, priority: int = 0) -> JsonSchema:
    found = {"name": name, "type": kind, "jsonPath": path, "description": description}
    return found | ({"priority": priority} if priority else {})


def _limits_printer_columns() -> list[dict[str, Any]]:
    """What ``kubectl get prlimits`` shows."""
    return [
        _column("Namespaces", "string", ".spec.namespaces", "Namespaces governed."),
        _column("Repositories", "string", ".spec.repositories", "Repositories rules may cover."),
        _column("Actions", "string", ".spec.allowedActions", "The most a rule may allow."),
        _column("Endpoints", "string", ".spec.ai.endpoints", "Model endpoints rules may name."),
        _column("Secret", "string", ".spec.secretName", "The namespace's token Secret.", 1),
        _column("Age", "date", ".metadata.creationTimestamp", "Time since creation."),
    ]


def _printer_columns() -> list[dict[str, Any]]:
    """What ``kubectl get prrules`` shows: only fields the controller or the user writes."""

    def column(
        name: str, kind: str, path: str, description: str, priority: int = 0
    ) -> dict[str, Any]:
        found = {"name": name, "type": kind, "jsonPath": path, "description": description}
        return found | ({"priority": priority} if priority else {})

    return [
        column("Schedule", "string", ".status.schedule", "Cron schedule the passes run on."),
        column("Triggers", "string", ".status.triggers", "What starts a pass: schedule, events."),
        column("Suspended", "boolean", ".spec.suspend", "Passes are not scheduled."),
        column(
            "Ready",
            "string",
            '.status.conditions[?(@.type=="Ready")].status',
            "Compiled and applied.",
        ),
        column("Last Run", "string", ".status.lastRun.phase", "Phase of the newest run."),
        column("Last Run At", "date", ".status.lastRun.startedAt", "Start of the newest run."),
        column("Age", "date", ".metadata.creationTimestamp", "Time since creation."),
        column("DryRun", "boolean", ".spec.dryRun", "Decide and report only.", priority=1),
        column("Actions", "string", ".spec.allowedActions", "Actions the rule may take.", 1),
        column(
            "Reason",
            "string",
            '.status.conditions[?(@.type=="Ready")].reason',
            "Why the rule is, or is not, ready.",
            priority=1,
        ),
    ]
