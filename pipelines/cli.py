"""The ``ai-operator`` console script: the reconciliation commands, ``compile``, ``controller``.

``compile`` is pure: rules in, manifests out, no cluster contacted. ``controller`` keeps the
rules of a cluster compiled and applied (:mod:`pipelines.controller`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from ai_operator.jobs.cli import app, run_app
from ai_operator.jobs.cli_support import EXIT_CONFIG, fail
from ai_operator.jobs.config import ConfigError, Settings
from ai_operator.jobs.log import configure_logging
from ai_operator.jobs.rules.files import RuleFileError
from ai_operator.jobs.rules.validation import load_valid_rules


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
    events: Annotated[
        bool,
        typer.Option(
            "--events",
            help="Argo: a Sensor for each rule with spec.events (needs Argo Events' EventSource).",
        ),
    ] = False,
    output: Annotated[
        str,
        typer.Option(
            "-o",
            "--output",
            help=(
                "- for stdout; a file ending in .yaml or .yml for every manifest in it; anything "
                "else is a directory (created if missing) with one file per rule."
            ),
        ),
    ] = "-",
) -> None:
    """Compile rules into Argo CronWorkflows (or CronJobs), without a cluster."""
    from ai_operator.pipelines.compile import CompileError, CompileOptions, compile_rules, to_yaml  # noqa: PLC0415
    from ai_operator.pipelines.names import namespace_problem  # noqa: PLC0415

    refused = namespace_problem(namespace) if namespace is not None else None
    if refused is not None:
        fail(f"--{refused}")

    try:
        loaded = load_valid_rules(files)
    except RuleFileError as exc:
        fail(str(exc))
    if not loaded:
        fail(f"no rule in {', '.join(map(str, files))}")
    one_file = output != "-" and Path(output).suffix in (".yaml", ".yml")
    one_file = one_file and not Path(output).is_dir()
    if one_file and any(Path(output).resolve() == Path(str(f)).resolve() for f in files):
        fail(f"-o {output} is a rule file given to compile: it would be overwritten")
    if output != "-" and not one_file and Path(output).exists() and not Path(output).is_dir():
        fail(f"-o {output}: not a directory (name a directory, a .yaml file or -)", EXIT_CONFIG)
    overrides: dict[str, Any] = {"image": image, "namespace": namespace, "parallelism": parallelism}
    overrides["events"] = events or None
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
    if one_file:
        destination = Path(output)
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(to_yaml(manifests))
        typer.echo(f"wrote {destination}", err=True)
        return
    directory = Path(output)
    directory.mkdir(parents=True, exist_ok=True)
    for manifest in manifests:
        path = directory / f"{manifest.name}.{manifest.kind.lower()}.yaml"
        path.write_text(to_yaml([manifest]))
        typer.echo(f"wrote {path}", err=True)


@app.command("controller")
def controller_command(
    config: Annotated[
        Path | None,
        typer.Option("--config", help="The configuration file (the Helm chart writes it)."),
    ] = None,
) -> None:
    """Keep every served rule compiled into its CronWorkflow (or CronJob), applied and reported."""
    from ai_operator.pipelines.controller import ControllerConfig, run_controller  # noqa: PLC0415
    from ai_operator.pipelines.controller.config import ControllerConfigError, load_config  # noqa: PLC0415
    from ai_operator.pipelines.controller.kube import KubeError, load_connection  # noqa: PLC0415

    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        fail(str(exc))
    configure_logging(settings.log_level, settings.log_format, secrets=settings.secrets())
    try:
        loaded = load_config(config) if config is not None else ControllerConfig()
    except ControllerConfigError as exc:
        fail(str(exc))
    try:
        connection = load_connection()
    except KubeError as exc:
        fail(str(exc))

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_controller(loaded, connection, stop)

    try:
        asyncio.run(serve())
    except OSError as exc:  # the health port is taken, or the like
        fail(f"cannot serve: {exc}")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the console script (usage errors exit 64, see :func:`jobs.cli.run_app`)."""
    sys.exit(run_app(app, argv))
