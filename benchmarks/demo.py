"""Benchmark: how long a new user's first command, ``ai-operator demo``, takes with the stand-in.

    python -m benchmarks.demo [--runs N]

1. The command as a new process with an empty environment, as the README runs it (without the
   install check of ``scripts/ai-operator``): wall-clock seconds over N runs, for the default
   demo and for ``--pipeline``. The goal is under 10 s on a 2-core machine.
2. One demo in this process, split: importing the command's modules, building GitHub's schema
   for the sandbox, and each pass (the sum of its rules' passes), with the GitHub requests,
   mutations and model calls each pass made.

It talks only to the sandbox it starts; it never reaches a real GitHub or model.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 10.0


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="runs of each command (default 3)")
    args = parser.parse_args(argv)
    print(f"ai-operator demo with the stand-in model, {os.cpu_count()} CPUs", file=out)
    print(f"{'a new process, empty environment':40} {'min':>6} {'median':>7} {'max':>6}", file=out)
    for label, extra in (("demo", []), ("demo --pipeline", ["--pipeline"])):
        times = [_timed_command(extra) for _ in range(args.runs)]
        print(
            f"{label:40} {min(times):6.2f} {statistics.median(times):7.2f} {max(times):6.2f}"
            f"   (seconds, {args.runs} runs; goal < {TARGET_SECONDS:g})",
            file=out,
        )
    _in_process(out)
    return 0


def _timed_command(extra: list[str]) -> float:
    with tempfile.TemporaryDirectory() as home:
        env = {"PATH": "/usr/bin:/bin", "HOME": home, "PYTHONPATH": str(ROOT)}
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "ai_operator.pipelines", "demo", "--output", "json", *extra],
            env=env,
            cwd=home,
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the demo failed (exit {done.returncode}):\n{done.stderr}")
    document: dict[str, Any] = json.loads(done.stdout)
    if document["problems"]:
        raise SystemExit(f"the demo reported problems: {document['problems']}")
    return elapsed


def _in_process(out: TextIO) -> None:
    started = time.perf_counter()
    from ai_operator.jobs.config import Settings  # noqa: PLC0415 - importing is what is measured
    from ai_operator.jobs.demo.run import DemoOptions, run_demo  # noqa: PLC0415
    from ai_operator.jobs.sandbox.schema import github_schema  # noqa: PLC0415

    imported = time.perf_counter()
    github_schema()
    built = time.perf_counter()
    result = run_demo(DemoOptions(), Settings.from_env({"LOG_LEVEL": "WARNING"}))
    finished = time.perf_counter()
    print("\none demo in this process (seconds)", file=out)
    print(f"  {'importing the command':34} {imported - started:6.2f}", file=out)
    print(f"  {'building the sandbox schema':34} {built - imported:6.2f}", file=out)
    print(f"  {'the whole demo (three passes)':34} {finished - built:6.2f}", file=out)
    heading = f"{'pass':14} {'seconds':>8} {'requests':>9} {'mutations':>10} {'AI calls':>9}"
    print(f"  {heading}", file=out)
    for run in result.passes:
        seconds = sum(report.duration_seconds for report in run.reports)
        requests = sum(summary.github_requests for summary in run.summaries)
        calls = sum(summary.ai_calls for summary in run.summaries)
        print(
            f"  {run.name:14} {seconds:8.2f} {requests:9d} {len(run.mutations):10d} {calls:9d}",
            file=out,
        )


if __name__ == "__main__":
    sys.exit(main())
