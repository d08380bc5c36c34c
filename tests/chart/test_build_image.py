"""Building and publishing the image: `scripts/build-image` tags what the chart expects, with
whichever engine exists, and the forge's release workflow is valid and pushes that same tag.

No container engine runs here, so the engines are stand-in commands on PATH that record the
arguments they were given; the Dockerfile itself is checked in test_image.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ai_operator.pipelines.options import CompileOptions
from tests.chart.helm import CHART, ROOT

SCRIPT = ROOT / "scripts" / "build-image"
WORKFLOW = ROOT / ".github" / "workflows" / "release-image.yml"
VERSION = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
EXPECTED = f"ghcr.io/ai-operator/ai-operator:{VERSION}"


def engine_dir(tmp_path: Path, *engines: str) -> Path:
    """A PATH folder holding stand-in engines that append their argv to ``calls``."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for engine in engines:
        stub = folder / engine
        stub.write_text(f'#!/bin/sh\necho "{engine} $*" >> "{tmp_path}/calls"\n')
        stub.chmod(0o755)
    for tool in ("bash", "sed", "head", "dirname"):
        found = shutil.which(tool)
        assert found, tool
        (folder / tool).symlink_to(found)
    return folder


def build(tmp_path: Path, *args: str, engines: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(engine_dir(tmp_path, *engines)), "HOME": str(tmp_path)}
    return subprocess.run(
        [str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def calls(tmp_path: Path) -> list[str]:
    path = tmp_path / "calls"
    return path.read_text().splitlines() if path.exists() else []


def test_default_tag_is_what_the_chart_and_compile_expect(tmp_path: Path) -> None:
    """The default reference is the chart's image at its appVersion, as `compile` defaults to."""
    result = build(tmp_path, engines=("docker",))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == EXPECTED
    assert CompileOptions().image == EXPECTED
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert f"{values['image']['repository']}:{VERSION}" == EXPECTED
    assert calls(tmp_path) == [f"docker build -f Dockerfile -t {EXPECTED} ."]


@pytest.mark.parametrize(
    ("engines", "expected"),
    [
        pytest.param(("podman",), "podman build", id="podman-when-no-docker"),
        pytest.param(("buildah",), "buildah build", id="buildah-when-alone"),
        pytest.param(("docker", "podman"), "docker build", id="docker-first"),
    ],
)
def test_uses_whichever_engine_exists(
    tmp_path: Path, engines: tuple[str, ...], expected: str
) -> None:
    """docker, podman or buildah: the first one found builds."""
    result = build(tmp_path, "--tag", "dev", engines=engines)
    assert result.returncode == 0, result.stderr
    assert calls(tmp_path)[0].startswith(expected)
    assert calls(tmp_path)[0].endswith(":dev .")


def test_push_pushes_the_built_reference(tmp_path: Path) -> None:
    """--push pushes exactly the reference that was built."""
    result = build(tmp_path, "--image", "registry.example.com/ai", "--push", engines=("podman",))
    assert result.returncode == 0, result.stderr
    assert calls(tmp_path)[-1] == f"podman push registry.example.com/ai:{VERSION}"


def test_no_engine_is_a_clear_error(tmp_path: Path) -> None:
    """Without any engine the script says what to install and fails."""
    result = build(tmp_path, engines=())
    assert result.returncode == 1
    assert "install docker, podman or buildah" in result.stderr


def test_release_workflow_is_valid_and_pushes_the_expected_tag() -> None:
    """The forge's workflow passes GitHub's workflow schema and runs the same script on a tag."""
    checker = shutil.which("check-jsonschema") or str(
        Path(sys.executable).parent / "check-jsonschema"
    )
    if not os.access(checker, os.X_OK):
        pytest.fail("check-jsonschema is missing: it comes with the dev extras")
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow[True]["push"]["tags"] == ["v*.*.*"]  # YAML 1.1 reads the key `on` as True
    steps = workflow["jobs"]["image"]["steps"]
    assert any(
        "scripts/build-image" in step.get("run", "") and "--push" in step["run"] for step in steps
    )
    assert workflow["permissions"] == {"contents": "read", "packages": "write"}
