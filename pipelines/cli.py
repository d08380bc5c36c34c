"""The ``ai-operator`` console script: the reconciliation commands plus ``compile``.

``compile`` is pure: rules in, manifests out, no cluster contacted.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from jobs.cli import EXIT_CONFIG, app, fail
from jobs.rules.files import RuleFileError, load_rules


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
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", help="Namespace of the output (default: the rule's)."),
    ] = None,
    parallelism: Annotated[
        int | None, typer.Option("--parallelism", min=1, max=100, help="Decide pods at once.")
    ] = None,
    output: Annotated[
        str, typer.Option("-o", "--output", help="A directory (one file per rule) or - for stdout.")
    ] = "-",
) -> None:
    """Compile rules into Argo CronWorkflows (or CronJobs), without a cluster."""
    from pipelines.compile import CompileError, CompileOptions, compile_rules, to_yaml  # noqa: PLC0415

    try:
        loaded = load_rules(files)
    except RuleFileError as exc:
        fail(str(exc))
    overrides: dict[str, Any] = {"image": image, "namespace": namespace, "parallelism": parallelism}
    try:
        options = CompileOptions(**{k: v for k, v in overrides.items() if v is not None})
        manifests = compile_rules([item.rule for item in loaded], target.value, options)
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
