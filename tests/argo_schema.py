"""Argo v4.1.2's CRD schemas and Argo Events v1.9.11's JSON Schema, made strict, as validators.

The CRD's openAPIV3Schema allows unknown fields wherever it lists ``properties``: the API server
would silently prune a typo such as ``imagee``. Here every object schema that lists properties and
neither preserves unknown fields nor says ``additionalProperties`` gets
``additionalProperties: false``, so a typo fails as it would under ``argo lint --strict``.
Kubernetes' ``x-kubernetes-int-or-string`` and ``nullable`` become plain JSON Schema.

The schema file (2.9 MB) is read from ``.cache/argo/`` (put there by ``scripts/fetch-schemas``)
once per process. :func:`workflow_errors` checks a Workflow or WorkflowTemplate the same way.

Argo Events' CRDs preserve any ``spec`` (the controller validates it): its pinned
``schema.json`` (``.cache/argo-events/``) is the real contract. :func:`events_errors` validates an
EventSource, Sensor or EventBus against its definition there, made strict in the same way
(every definition that lists ``properties`` gets ``additionalProperties: false``; the pinned copy
has none). A Sensor's ``k8s`` trigger resource is free-form there (``K8SResource``): validate it
with :func:`workflow_errors`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[1]
CRD_PATH = ROOT / ".cache" / "argo" / "argoproj.io_cronworkflows.yaml"
CRD_PATHS = {
    "CronWorkflow": CRD_PATH,
    "Workflow": ROOT / ".cache" / "argo" / "argoproj.io_workflows.yaml",
    "WorkflowTemplate": ROOT / ".cache" / "argo" / "argoproj.io_workflowtemplates.yaml",
}
EVENTS_SCHEMA_PATH = ROOT / ".cache" / "argo-events" / "schema.json"
EVENTS_DEFINITIONS = {
    kind: f"io.argoproj.events.v1alpha1.{kind}" for kind in ("EventSource", "Sensor", "EventBus")
}
VERSION = "v1alpha1"


def strict(schema: Any) -> Any:
    """A copy of an openAPIV3Schema that refuses unknown fields."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in result
        and "additionalProperties" not in result
        and not result.get("x-kubernetes-preserve-unknown-fields")
    ):
        result["additionalProperties"] = False
    if result.get("x-kubernetes-int-or-string") and "anyOf" not in result:
        result["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if result.get("nullable") and isinstance(result.get("type"), str):
        result["type"] = [result["type"], "null"]
    return result


@functools.cache
def cron_workflow_validator() -> jsonschema.Draft7Validator:
    """The strict validator of CronWorkflow documents (loaded once)."""
    return argo_validator("CronWorkflow")


@functools.cache
def argo_validator(kind: str) -> jsonschema.Draft7Validator:
    """The strict validator of Argo documents of ``kind`` (loaded once)."""
    path = CRD_PATHS[kind]
    if not path.exists():
        raise FileNotFoundError(
            f"{path.relative_to(ROOT)} is missing: run scripts/fetch-schemas first"
        )
    with path.open() as file:
        crd = yaml.load(file, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    version = next(v for v in crd["spec"]["versions"] if v["name"] == VERSION)
    return jsonschema.Draft7Validator(strict(version["schema"]["openAPIV3Schema"]))


@functools.cache
def events_validator(kind: str) -> jsonschema.Draft7Validator:
    """The strict validator of Argo Events documents of ``kind`` (loaded once)."""
    if not EVENTS_SCHEMA_PATH.exists():
        raise FileNotFoundError(
            f"{EVENTS_SCHEMA_PATH.relative_to(ROOT)} is missing: run scripts/fetch-schemas first"
        )
    schema = strict(json.loads(EVENTS_SCHEMA_PATH.read_text()))
    root = {
        "$ref": f"#/definitions/{EVENTS_DEFINITIONS[kind]}",
        "definitions": schema["definitions"],
    }
    return jsonschema.Draft7Validator(root)


def workflow_errors(document: Mapping[str, Any]) -> list[str]:
    """Each violation of Argo's schema for the document's kind, as ``path: message``."""
    return _listed(argo_validator(str(document.get("kind"))).iter_errors(document))


def events_errors(document: Mapping[str, Any]) -> list[str]:
    """Each violation of Argo Events' schema for the document's kind, as ``path: message``."""
    return _listed(events_validator(str(document.get("kind"))).iter_errors(document))


def _listed(errors: Iterator[jsonschema.ValidationError]) -> list[str]:
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in sorted(errors, key=str)
    ]


def schema_errors(document: Mapping[str, Any]) -> list[str]:
    """Each schema violation as ``path: message`` (empty when the document is valid)."""
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in _errors(document)
    ]


def _errors(document: Mapping[str, Any]) -> Iterator[jsonschema.ValidationError]:
    return iter(sorted(cron_workflow_validator().iter_errors(document), key=str))
