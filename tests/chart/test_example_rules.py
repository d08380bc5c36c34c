"""The chart's example rules are the project's examples/*.yaml: one set of example rules.

``scripts/generate-chart-examples`` copies them into the chart; these tests fail when the copies
drift, and check that the rules the chart installs are the examples (metadata and spec; the
chart's rules cover the installation's repositories, so ``repositories`` is left out).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.chart.helm import CHART, NAMESPACE, ROOT, Helm

EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
GENERATOR = ROOT / "scripts" / "generate-chart-examples"


def generator() -> ModuleType:
    """scripts/generate-chart-examples as a module."""
    loader = importlib.machinery.SourceFileLoader("generate_chart_examples", str(GENERATOR))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_the_generator_finds_no_drift() -> None:
    """`scripts/generate-chart-examples --check` passes on the committed chart."""
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (CHART / "examples").iterdir()) == [p.name for p in EXAMPLES]


def test_the_check_names_each_drift_and_the_generator_repairs_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An example edited, one added and a copy left over are each named; a run makes them equal."""
    module = generator()
    examples, copies = tmp_path / "examples", tmp_path / "chart-examples"
    shutil.copytree(CHART / "examples", copies)
    examples.mkdir()
    for path in EXAMPLES:
        shutil.copy(path, examples / path.name)
    module.ROOT, module.EXAMPLES, module.TARGET = tmp_path, examples, copies
    staging = examples / "staging-automerge.yaml"
    staging.write_text(
        staging.read_text().replace("reconciliationInterval: 60", "schedule: '@daily'")
    )
    (examples / "new-rule.yaml").write_text(staging.read_text())
    (copies / "gone.yaml").write_text("")

    assert module.main(["--check"]) == 1
    said = capsys.readouterr().err
    for line in ["staging-automerge.yaml: differs", "new-rule.yaml: missing", "gone.yaml: not an"]:
        assert line in said
    assert module.main([]) == 0
    assert module.main(["--check"]) == 0
    assert sorted(p.name for p in copies.iterdir()) == sorted(
        p.name for p in examples.glob("*.yaml")
    )


def example(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_the_chart_installs_each_example(helm: Helm, path: Path) -> None:
    """With rules.enabled, each example is installed: its name, labels and spec (no repositories)."""
    rendered = helm.template(values=["rules.enabled=true"])
    wanted = example(path)
    installed = rendered.one("PRReconciliationRule", wanted["metadata"]["name"], NAMESPACE)
    spec = dict(wanted["spec"])
    spec.pop("repositories", None)
    assert installed["spec"] == spec
    labels = installed["metadata"]["labels"]
    assert {k: labels[k] for k in wanted["metadata"].get("labels", {})} == wanted["metadata"].get(
        "labels", {}
    )
    assert labels["app.kubernetes.io/component"] == "rule"
