"""The CRD: generated from the model, structural, in sync with crds/, compatible with the seed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from ai_operator.jobs.rules.crd import (
    CRD_PATH,
    CRDS,
    HEADER,
    crd_document,
    limits_crd_document,
    render_crd_yaml,
)
from ai_operator.jobs.rules.files import load_rules
from ai_operator.jobs.rules.model import RuleStatus

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT.parent / "shared" / "seed"
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))

needs_seed = pytest.mark.skipif(
    not SEED.is_dir(), reason="the earlier design's files (../shared/seed) are not beside the repo"
)


def open_api_schema(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with its dotted path (array items as ``[]``)."""
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}" if path else name)
    if "items" in node:
        yield from walk(node["items"], f"{path}[]")


def seed_documents(pattern: str) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((SEED / "examples").glob(pattern)):
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


SCHEMA = open_api_schema(crd_document())


def schema_nodes(only_with: str | None = None) -> list[Any]:
    """Schema nodes as test parameters, named by their path."""
    return [
        pytest.param(node, id=path or "(root)")
        for path, node in walk(SCHEMA)
        if only_with is None or only_with in node
    ]


def test_crd_is_a_valid_kubernetes_object() -> None:
    """The whole CRD passes Kubernetes 1.33's own schema, unknown fields included."""
    kubernetes_validate.validate(crd_document(), "1.33.0", strict=True)


def test_crd_names_the_resource() -> None:
    """Group, version, names and scope are the earlier design's."""
    spec = crd_document()["spec"]
    version = spec["versions"][0]
    assert crd_document()["metadata"]["name"] == "prreconciliationrules.aioperator.io"
    assert spec["group"] == "aioperator.io"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == "PRReconciliationRule"
    assert spec["names"]["shortNames"] == ["prrule"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


@pytest.mark.parametrize("node", schema_nodes())
def test_every_schema_node_is_structural(node: dict[str, Any]) -> None:
    """Each node has a type and none of the keywords a structural schema forbids."""
    assert node.get("type") or node.get("x-kubernetes-preserve-unknown-fields")
    forbidden = {"$ref", "$defs", "anyOf", "oneOf", "allOf", "not", "definitions", "title"}
    assert not forbidden & node.keys()
    assert not ("properties" in node and "additionalProperties" in node)
    assert node.get("uniqueItems") is not True
    assert node.get("default", 0) is not None


def test_metadata_is_not_described() -> None:
    """metadata is left to the API server: only ``type: object``."""
    assert SCHEMA["properties"]["metadata"] == {"type": "object"}


@pytest.mark.parametrize("node", schema_nodes(only_with="default"))
def test_defaults_are_valid_for_their_field(node: dict[str, Any]) -> None:
    """A default must pass its own field's schema, or the API server rejects the CRD."""
    jsonschema.Draft4Validator(node).validate(node["default"])


def test_status_keeps_unknown_fields_and_covers_rule_status() -> None:
    """Status describes every RuleStatus field and keeps fields added later."""
    status = SCHEMA["properties"]["status"]
    assert status["x-kubernetes-preserve-unknown-fields"] is True
    assert set(RuleStatus.model_fields) <= set(status["properties"])
    assert status["properties"]["lastReconciliationTime"]["format"] == "date-time"
    condition = status["properties"]["conditions"]["items"]["properties"]
    assert set(condition) == {
        "type",
        "status",
        "lastTransitionTime",
        "reason",
        "message",
        "observedGeneration",
    }


def test_model_only_rules_reach_the_api_server() -> None:
    """The schedule/interval exclusion and unique actions are stated for the API server."""
    spec = SCHEMA["properties"]["spec"]
    rules = [v["rule"] for v in spec["x-kubernetes-validations"]]
    assert rules == ["!(has(self.schedule) && has(self.reconciliationInterval))"]
    assert spec["properties"]["allowedActions"]["x-kubernetes-list-type"] == "set"
    [everything] = spec["properties"]["selector"]["x-kubernetes-validations"]
    assert "self.matchAll" in everything["rule"] and "has(self.baseBranch)" in everything["rule"]
    assert everything["message"].startswith("selects every open pull request")
    timeout = spec["properties"]["ai"]["properties"]["timeoutSeconds"]
    assert (timeout["minimum"], timeout["exclusiveMinimum"]) == (0, True)


def test_printer_columns_point_at_described_fields() -> None:
    """The default columns are what the controller writes; each reads a described field."""
    columns = crd_document()["spec"]["versions"][0]["additionalPrinterColumns"]
    described = {f".{path}" for path, _ in walk(SCHEMA)} | {".metadata.creationTimestamp"}
    shown = [column["name"] for column in columns if not column.get("priority")]
    assert shown == ["Schedule", "Triggers", "Suspended", "Ready", "Last Run", "Last Run At", "Age"]
    for column in columns:
        path = column["jsonPath"].replace('[?(@.type=="Ready")]', "[]")
        assert path in described, column["name"]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_examples_pass_the_crd_schema(example: Path) -> None:
    """What the model accepts, the API server's schema accepts too."""
    for doc in yaml.safe_load_all(example.read_text()):
        jsonschema.Draft4Validator(SCHEMA).validate(doc)


def test_saved_crd_matches_the_model() -> None:
    """crds/ is regenerated whenever the model changes (python scripts/generate-crd)."""
    text = (ROOT / CRD_PATH).read_text()
    assert text.startswith(HEADER)
    assert yaml.safe_load(text) == crd_document()


def test_rendered_yaml_round_trips() -> None:
    """The YAML the script writes parses back to the same document."""
    assert yaml.safe_load(render_crd_yaml()) == crd_document()


@pytest.mark.parametrize(
    ("change", "code"),
    [
        pytest.param(lambda doc: doc, 0, id="in-sync-passes"),
        pytest.param(lambda doc: doc["spec"].update(scope="Cluster"), 1, id="drift-fails"),
    ],
)
def test_generate_crd_check_exits_on_drift(tmp_path: Path, change: Any, code: int) -> None:
    """``scripts/generate-crd --check`` exits 1 when the file differs from the model."""
    doc = crd_document()
    change(doc)
    target = tmp_path / "crd.yaml"
    target.write_text(yaml.safe_dump(doc))
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate-crd"), "--check", "--file", str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == code, result.stderr


@needs_seed
def test_every_seed_crd_field_exists_with_the_same_type() -> None:
    """Fields of the earlier design's CRD keep their name and type, and its enums stay valid."""
    seed = open_api_schema(yaml.safe_load((SEED / "chart" / "crd.yaml").read_text()))
    ours = dict(walk(SCHEMA))
    for path, node in walk(seed):
        assert path in ours, f"{path} is missing"
        assert ours[path].get("type") == node.get("type"), path
        assert set(node.get("enum", [])) <= set(ours[path].get("enum", node.get("enum", []))), path


@needs_seed
@pytest.mark.parametrize("name", ["staging", "production", "dependabot"])
def test_seed_examples_load_unchanged(name: str) -> None:
    """The earlier design's example rules are valid rules today, for the model and the CRD."""
    [path] = (SEED / "examples").glob(f"{name}-*.yaml")
    [loaded] = load_rules([path])
    assert loaded.rule.metadata.name.startswith(name)
    for doc in seed_documents(path.name):
        jsonschema.Draft4Validator(SCHEMA).validate(doc)


# --- the administrator's limits --------------------------------------------------------------


def test_limits_crd_is_cluster_scoped_and_valid() -> None:
    """PRReconciliationLimits: cluster-scoped (no namespaced role can write one), short name."""
    crd = limits_crd_document()
    kubernetes_validate.validate(crd, "1.33.0", strict=True)
    spec = crd["spec"]
    assert crd["metadata"]["name"] == "prreconciliationlimits.aioperator.io"
    assert spec["scope"] == "Cluster"
    assert spec["names"]["kind"] == "PRReconciliationLimits"
    assert spec["names"]["shortNames"] == ["prlimits"]
    for path, node in walk(open_api_schema(crd)):
        assert node.get("type"), path
        assert not {"$ref", "anyOf", "title"} & node.keys(), path


def test_kubectl_get_prlimits_shows_what_is_allowed() -> None:
    """Printer columns: namespaces, repositories, actions, endpoints; each a described field."""
    version = limits_crd_document()["spec"]["versions"][0]
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Namespaces"] == ".spec.namespaces"
    assert columns["Repositories"] == ".spec.repositories"
    assert columns["Actions"] == ".spec.allowedActions"
    assert columns["Endpoints"] == ".spec.ai.endpoints"
    schema = open_api_schema(limits_crd_document())
    described = {f".{path}" for path, _ in walk(schema)}
    for path in columns.values():
        assert path in described or path.startswith(".metadata"), path


@pytest.mark.parametrize("path", sorted(CRDS))
def test_every_saved_crd_matches_its_model(path: str) -> None:
    """crds/ holds every CRD, each as its model says (python scripts/generate-crd)."""
    assert yaml.safe_load((ROOT / path).read_text()) == CRDS[path]()


# --- bounds: checking a rule costs a bounded time --------------------------------------------


@pytest.mark.parametrize(
    ("path", "node"),
    [
        pytest.param(path, node, id=path)
        for path, node in walk(SCHEMA["properties"]["spec"])
        if node.get("type") in {"string", "array"} and "enum" not in node
    ],
)
def test_every_string_and_list_of_a_rule_is_bounded(path: str, node: dict[str, Any]) -> None:
    """maxLength on every string, maxItems on every list of the spec."""
    if node["type"] == "string":
        assert isinstance(node.get("maxLength"), int), path
    else:
        assert isinstance(node.get("maxItems"), int), path
