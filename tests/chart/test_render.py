"""The chart renders, for every value set, objects that Kubernetes and the CRD accept."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.argo_schema import strict
from tests.chart.helm import CHART, ROOT, VALUE_FILES, Helm

KUBERNETES_VERSIONS = ["1.28.0", kubernetes_validate.latest_version()]
CRD_FILE = "prreconciliationrules.aioperator.io.yaml"
LIMITS_CRD_FILE = "prreconciliationlimits.aioperator.io.yaml"
CRD_FILES = (CRD_FILE, LIMITS_CRD_FILE)

# (values file or None for the defaults, --set values)
VALUE_SETS = [pytest.param(None, id="defaults")] + [
    pytest.param(path, id=path.stem) for path in VALUE_FILES
]


def render_args(value_file: Path | None) -> tuple[Path, ...]:
    return (value_file,) if value_file else ()


@functools.cache
def rule_validator() -> jsonschema.Draft4Validator:
    """The CRD's schema, refusing unknown fields (the API server would drop them silently)."""
    crd = yaml.safe_load((CHART / "crds" / CRD_FILE).read_text())
    return jsonschema.Draft4Validator(
        strict(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    )


def test_value_sets_cover_the_required_cases() -> None:
    """The value sets include the cronjob executor, existing Secrets, all namespaces, example
    rules and the earlier design's own values file."""
    stems = {path.stem for path in VALUE_FILES}
    assert {"cronjob", "existing-secret", "all-namespaces", "example-rules"} <= stems
    assert "earlier-design" in stems


@pytest.mark.parametrize("value_file", VALUE_SETS)
def test_helm_lint_passes(helm: Helm, value_file: Path | None) -> None:
    """`helm lint --strict` finds nothing wrong."""
    args = [arg for path in render_args(value_file) for arg in ("--values", str(path))]
    result = helm.run("lint", "--strict", str(CHART), *args)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("value_file", VALUE_SETS)
def test_every_object_is_valid_kubernetes(
    helm: Helm, value_file: Path | None, version: str
) -> None:
    """Every rendered object passes Kubernetes' own schema, unknown fields included."""
    rendered = helm.template(*render_args(value_file))
    for doc in rendered.docs:
        if doc["kind"] in {"PRReconciliationRule", "PRReconciliationLimits"}:
            continue  # our own kinds: checked against their CRDs below
        if doc["kind"] in {"EventSource", "EventBus"}:
            continue  # Argo Events' kinds: checked against its schema (tests/chart/test_events.py)
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("value_file", VALUE_SETS)
def test_every_object_names_its_namespace(helm: Helm, value_file: Path | None) -> None:
    """Namespaced objects say where they go; cluster-scoped ones carry the namespace in their
    name, so two releases in two namespaces never collide."""
    rendered = helm.template(*render_args(value_file))
    for doc in rendered.docs:
        metadata = doc["metadata"]
        if doc["kind"] in {"ClusterRole", "ClusterRoleBinding"}:
            assert metadata["name"].startswith(f"{rendered.release_namespace}-")
        elif doc["kind"] not in {"CustomResourceDefinition", "PRReconciliationLimits"}:
            assert metadata.get("namespace"), f"{doc['kind']} {metadata['name']}"


# The value sets that install rules (the others install none: nothing to check against the CRD).
RULE_VALUE_SETS = [
    pytest.param(path, id=path.stem)
    for path in VALUE_FILES
    if path.stem in {"example-rules", "earlier-design"}
]


@pytest.mark.parametrize("value_file", RULE_VALUE_SETS)
def test_rendered_rules_match_the_crd(helm: Helm, value_file: Path) -> None:
    """Rendered example rules are valid PRReconciliationRules (no unknown field either)."""
    rules = helm.template(value_file).of_kind("PRReconciliationRule")
    assert rules, f"{value_file.name} installs no rule"
    for rule in rules:
        errors = [
            f"{list(e.absolute_path)}: {e.message}" for e in rule_validator().iter_errors(rule)
        ]
        assert errors == [], rule["metadata"]["name"]


def test_example_rules_are_off_by_default(helm: Helm) -> None:
    """Example rules point at placeholder repositories: nothing is installed unless asked."""
    assert helm.template().of_kind("PRReconciliationRule") == []


def test_example_rules_install_when_enabled(helm: Helm) -> None:
    """rules.enabled installs the examples and every enabled rule of the values; a rule of the
    values named like an example replaces it."""
    example = next(path for path in VALUE_FILES if path.stem == "example-rules")
    rules = {
        rule["metadata"]["name"]: rule["spec"]
        for rule in helm.template(example).of_kind("PRReconciliationRule")
    }
    assert set(rules) == {
        "staging-automerge",
        "production-approval",
        "dependabot-automerge",
        "weekend-freeze",
    }
    assert rules["dependabot-automerge"]["schedule"] == "*/10 * * * *"
    assert rules["dependabot-automerge"]["dryRun"] is True
    assert rules["weekend-freeze"]["allowedActions"] == ["wait", "escalate"]
    without = helm.template(example, values=["rules.examples.enabled=false"])
    names = {rule["metadata"]["name"] for rule in without.of_kind("PRReconciliationRule")}
    assert names == {"dependabot-automerge", "weekend-freeze"}


def test_rendered_rules_pass_the_cli_validator(helm: Helm, tmp_path: Path) -> None:
    """`ai-operator validate` accepts the example rules (templates, regexes, schedules)."""
    import subprocess
    import sys

    example = next(path for path in VALUE_FILES if path.stem == "example-rules")
    rules = helm.template(example)
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump_all(rules.of_kind("PRReconciliationRule")))
    result = subprocess.run(
        [sys.executable, "-m", "ai_operator.pipelines", "validate", str(path)],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", CRD_FILES)
def test_chart_crd_is_the_project_crd(name: str) -> None:
    """The chart installs exactly crds/'s CRDs, byte for byte."""
    copy, source = CHART / "crds" / name, ROOT / "crds" / name
    assert copy.read_bytes() == source.read_bytes(), (
        f"{copy.relative_to(ROOT)} differs from {source.relative_to(ROOT)}: "
        "python scripts/generate-crd"
    )
    assert sorted(path.name for path in (CHART / "crds").iterdir()) == sorted(CRD_FILES)


def test_crds_are_rendered_once(helm: Helm) -> None:
    """`helm template --include-crds` gives each CRD once, unchanged."""
    crds = helm.template().of_kind("CustomResourceDefinition")
    assert sorted(crds, key=lambda crd: crd["metadata"]["name"]) == [
        yaml.safe_load((ROOT / "crds" / name).read_text()) for name in sorted(CRD_FILES)
    ]


def test_default_install_reads_only_the_limits_cluster_wide(helm: Helm) -> None:
    """Serving only the release namespace: the one cluster-wide permission is reading the
    (cluster-scoped) PRReconciliationLimits."""
    (role,) = helm.template().of_kind("ClusterRole")
    assert role["rules"] == [
        {
            "apiGroups": ["aioperator.io"],
            "resources": ["prreconciliationlimits"],
            "verbs": ["list", "watch"],
        }
    ]


def test_release_name_prefixes_every_name(helm: Helm) -> None:
    """Another release name gives other names, and two releases never share an object."""
    ours = helm.template()
    theirs = helm.template(release="team-prs")

    def names(rendered: Any) -> set[tuple[str, str]]:
        return {
            (doc["kind"], doc["metadata"]["name"])
            for doc in rendered.docs
            if doc["kind"] not in {"CustomResourceDefinition", "PRReconciliationLimits"}
        }

    assert names(ours).isdisjoint(names(theirs))
    assert all(
        name.removeprefix(f"{theirs.release_namespace}-").startswith("team-prs-ai-operator")
        for _, name in names(theirs)
    )
