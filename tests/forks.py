"""The ``ai-operator`` command started in a fraction of its start-up: forked, not executed.

Starting ``python -m ai_operator.pipelines`` costs about two CPU-seconds, almost all of it
imports (the SDKs, the GitHub schema, typer). The tests run the command several hundred times,
as a user or a pod would; :class:`ForkServer` imports the product once, in a process of its own,
and forks one child per command. The child takes exactly the command's environment, working
directory, arguments and standard input, runs the console script's ``main``, and leaves its exit
code, standard output and standard error in files: what a test of the command can see of a
subprocess, and nothing of the test process (its threads, its fixtures' state) reaches it.

Forking from a clean server, not from the test process, is what keeps the child faithful:
the server is single-threaded and has configured nothing (no logging, no settings, no secret),
so every child configures itself from its own environment as a fresh process would.

``AI_OPERATOR_TEST_SUBPROCESS=1`` makes :func:`run_command` start a real subprocess instead.

Errors: :class:`ForkServerError` when the server does not start or has stopped;
:class:`subprocess.TimeoutExpired` when a command outlives its timeout (the child is killed).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUBPROCESS_VARIABLE = "AI_OPERATOR_TEST_SUBPROCESS"
_POLL_SECONDS = 0.005
_EXIT, _STDOUT, _STDERR, _STDIN, _PID = "exit-code", "stdout", "stderr", "stdin", "pid"


class ForkServerError(RuntimeError):
    """The fork server did not start, or is closed."""


@dataclass(frozen=True)
class Finished:
    """A command that ended: its exit code and what it wrote (``stdout`` None: discarded)."""

    code: int
    stdout: str | None
    stderr: str


class ForkServer:
    """One process that imported the product; :meth:`run` forks a child of it per command.

    Use as a context manager, or call :meth:`close`. Thread-safe.
    """

    def __init__(self) -> None:
        self._server = subprocess.Popen(
            [sys.executable, "-m", "tests.forks"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self._lock = threading.Lock()
        if self._server.stdout is None or self._server.stdout.readline().strip() != "ready":
            self.close()
            raise ForkServerError("the fork server did not start")

    def __enter__(self) -> ForkServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the server (children still running end on their own)."""
        for stream in (self._server.stdin, self._server.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        try:
            self._server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._server.kill()
            self._server.wait()

    def run(
        self,
        args: Sequence[str],
        env: Mapping[str, str],
        cwd: str | Path,
        *,
        timeout: float,
        stdin: str | None = None,
        keep_stdout: bool = True,
        results: str | Path | None = None,
    ) -> Finished:
        """Run ``ai-operator ARGS`` in a forked child and wait for it.

        ``results``: the directory the child leaves its exit code and output in (a fresh
        temporary one when None; it must not be shared by two commands at once).
        """
        with contextlib.ExitStack() as stack:
            where = Path(
                results
                if results is not None
                else stack.enter_context(tempfile.TemporaryDirectory(prefix="ai-operator-fork-"))
            )
            for name in (_EXIT, _PID):
                (where / name).unlink(missing_ok=True)
            if stdin is not None:
                (where / _STDIN).write_text(stdin, encoding="utf-8")
            request = {
                "args": list(args),
                "env": dict(env),
                "cwd": str(cwd),
                "results": str(where),
                "stdin": stdin is not None,
                "stdout": keep_stdout,
            }
            with self._lock:
                if self._server.stdin is None or self._server.poll() is not None:
                    raise ForkServerError("the fork server is closed")
                self._server.stdin.write(json.dumps(request) + "\n")
                self._server.stdin.flush()
            done, deadline = where / _EXIT, time.monotonic() + timeout
            while not done.exists():
                if time.monotonic() > deadline:
                    _kill(where / _PID)
                    raise subprocess.TimeoutExpired(["ai-operator", *args], timeout)
                time.sleep(_POLL_SECONDS)
            return Finished(
                int(done.read_text()),
                _read(where / _STDOUT) if keep_stdout else None,
                _read(where / _STDERR),
            )


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def _kill(pid_file: Path) -> None:
    with contextlib.suppress(OSError, ValueError):
        os.kill(int(pid_file.read_text()), signal.SIGKILL)


_shared: ForkServer | None = None
_shared_lock = threading.Lock()


def shared() -> ForkServer:
    """This process's fork server, started on first use (stop it with :func:`close_shared`)."""
    global _shared  # noqa: PLW0603 - one server per test process
    with _shared_lock:
        if _shared is None:
            _shared = ForkServer()
        return _shared


def close_shared() -> None:
    """Stop this process's fork server, if one was started."""
    global _shared  # noqa: PLW0603 - one server per test process
    with _shared_lock:
        if _shared is not None:
            _shared.close()
            _shared = None


def run_command(
    args: Sequence[str],
    env: Mapping[str, str],
    cwd: str | Path,
    *,
    timeout: float,
    stdin: str | None = None,
) -> Finished:
    """``ai-operator ARGS`` run as a user would, forked from :func:`shared` (see the module)."""
    if os.environ.get(SUBPROCESS_VARIABLE) == "1":
        done = subprocess.run(
            [sys.executable, "-m", "ai_operator.pipelines", *args],
            env=dict(env),
            cwd=cwd,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Finished(done.returncode, done.stdout, done.stderr)
    return shared().run(args, env, cwd, timeout=timeout, stdin=stdin)


# --- the server ---------------------------------------------------------------------------------


def _serve() -> None:
    """One request per line on stdin, one forked child each; ends when stdin closes."""
    _warm_up()
    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if os.fork() == 0:
            _child(request)
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass  # reap the children that ended


def _warm_up() -> None:
    """Import and build, once and pre-fork, what a command's first use builds lazily.

    The SDKs, and what they build on a first answer and a first error (their response and error
    types, their HTTP machinery): one call of each provider, answered and refused, by a stand-in
    model on loopback that is stopped before any child is forked. Then typer's command tree.
    """
    from pydantic import SecretStr

    from ai_operator.jobs.clients.ai import make_decision_client
    from ai_operator.jobs.clients.ai.errors import AIError
    from ai_operator.jobs.config import AIConfig
    from ai_operator.jobs.policy.verdict import verdict_schema
    from ai_operator.jobs.rules.model import DEFAULT_ACTIONS, AIProvider
    from ai_operator.jobs.sandbox.llm import FakeLLM
    from ai_operator.pipelines.cli import main

    token = "sk-warm-up-0123456789"
    with (
        open(os.devnull, "w") as quiet,
        contextlib.redirect_stdout(quiet),  # stdout is the line the server says "ready" on
        FakeLLM(token=token) as llm,
    ):
        for provider in AIProvider:
            url = llm.anthropic_url if provider is AIProvider.ANTHROPIC else llm.openai_url
            for key in (token, "sk-refused-0123456789"):
                config = AIConfig(provider, url, "m", SecretStr(key), None, 256, 5.0)
                client = make_decision_client(config, max_retries=0)
                with contextlib.suppress(AIError):
                    client.ask("Decide.", "A pull request.", verdict_schema(DEFAULT_ACTIONS))
        with contextlib.suppress(SystemExit):
            main(["--help"])
    # Typer rebuilds the same command tree from the functions' annotations on every call; build
    # it once here (each child still parses its own command line with it).
    import typer.main

    from ai_operator.jobs.cli import app

    built, build = typer.main.get_command(app), typer.main.get_command
    typer.main.get_command = lambda typer_instance: (
        built if typer_instance is app else build(typer_instance)
    )


def _child(request: dict[str, object]) -> None:
    """The forked child: become the command (environment, directory, stdio), run it, exit."""
    results = Path(str(request["results"]))
    code = 1
    try:
        (results / _PID).write_text(str(os.getpid()))
        env = request["env"]
        assert isinstance(env, dict)
        os.environ.clear()
        os.environ.update(env)
        os.chdir(str(request["cwd"]))
        stdin = results / _STDIN if request["stdin"] else Path(os.devnull)
        stdout = results / _STDOUT if request["stdout"] else Path(os.devnull)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        os.dup2(os.open(stdin, os.O_RDONLY), 0)
        os.dup2(os.open(stdout, flags, 0o600), 1)
        os.dup2(os.open(results / _STDERR, flags, 0o600), 2)
        # A fresh reader of the new standard input: the server's holds requests it buffered.
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 - the child's stdin
        from ai_operator.pipelines.cli import main

        args = request["args"]
        assert isinstance(args, list)
        try:
            main([str(arg) for arg in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        written = results / f"{_EXIT}.tmp"
        written.write_text(str(code))
        written.rename(results / _EXIT)
        os._exit(code)


if __name__ == "__main__":
    _serve()
