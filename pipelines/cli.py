"""The ``ai-operator`` console script: the reconciliation commands plus ``compile``.

``compile`` is pure: rules in, manifests out, no cluster contacted.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from jobs.cli import EXIT_CONFIG, app, fail
from jobs.rulefiles import RuleFileError, load_rules


class Target(StrEnum):
    """``--target`` choices."""

    ARGO = "argo"
    CRONJOB = "cronjob"


@app.command("compile")
def compile_command(
    files: Annotated[list[Path], typer.Argument(help="Rule files to compile.")],
    target: Annotated[Target, typer.Option("--target", help="argo or cronjob.")] = Target.ARGO,
    image: Annotated[
        str | None, typer.Option("--image", help="Container image of the steps.")
    ] = None,
    output: Annotated[
        str, typer.Option("-o", "--output", help="A directory (one file per rule) or - for stdout.")
    ] = "-",
) -> None:
    """Compile rules into Argo CronWorkflows (or CronJobs), without a cluster."""
    from pipelines.compile import CompileError, CompileOptions, compile_rule, to_yaml  # noqa: PLC0415

    try:
        loaded = load_rules(files)
    except RuleFileError as exc:
        fail(str(exc))
    options = CompileOptions() if image is None else CompileOptions(image=image)
    try:
        manifests = [compile_rule(item.rule, target.value, options) for item in loaded]
    except CompileError as exc:
        fail(str(exc))
    for manifest in manifests:
        for note in manifest.notes:
            typer.echo(f"note: {manifest.rule}: {note}", err=True)
    if output == "-":
        typer.echo(to_yaml(manifests), nl=False)
        return
    directory = Path(output)
    if directory.exists() and not directory.is_dir():
        fail(f"{output} is not a directory", EXIT_CONFIG)
    directory.mkdir(parents=True, exist_ok=True)
    for manifest in manifests:
        path = directory / f"{manifest.name}.{manifest.kind.lower()}.yaml"
        path.write_text(to_yaml([manifest]))
        typer.echo(f"wrote {path}", err=True)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the console script."""
    app(args=list(argv) if argv is not None else None)
