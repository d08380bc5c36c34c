"""Argo v4.1.2's CronWorkflow CRD schema, made strict, as a JSON Schema validator for tests.

The CRD's openAPIV3Schema allows unknown fields wherever it lists ``properties``: the API server
would silently prune a typo such as ``imagee``. Here every object schema that lists properties and
neither preserves unknown fields nor says ``additionalProperties`` gets
``additionalProperties: false``, so a typo fails as it would under ``argo lint --strict``.
Kubernetes' ``x-kubernetes-int-or-string`` and ``nullable`` become plain JSON Schema.

The schema file (2.9 MB) is read from ``.cache/argo/`` (put there by ``scripts/fetch-schemas``)
once per process.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[1]
CRD_PATH = ROOT / ".cache" / "argo" / "argoproj.io_cronworkflows.yaml"
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
    if not CRD_PATH.exists():
        raise FileNotFoundError(
            f"{CRD_PATH.relative_to(ROOT)} is missing: run scripts/fetch-schemas first"
        )
    with CRD_PATH.open() as file:
        crd = yaml.load(file, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    version = next(v for v in crd["spec"]["versions"] if v["name"] == VERSION)
    return jsonschema.Draft7Validator(strict(version["schema"]["openAPIV3Schema"]))


def schema_errors(document: Mapping[str, Any]) -> list[str]:
    """Each schema violation as ``path: message`` (empty when the document is valid)."""
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in _errors(document)
    ]


def _errors(document: Mapping[str, Any]) -> Iterator[jsonschema.ValidationError]:
    return iter(sorted(cron_workflow_validator().iter_errors(document), key=str))
