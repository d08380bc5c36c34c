"""`ai-operator controller --config FILE` as a process: kubeconfig in, CronWorkflows out, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest
import yaml

from ai_operator.pipelines.controller.kube import CRON_WORKFLOWS, RULES
from tests.controller.apiserver import ApiServer
from tests.controller.conftest import NAMESPACE, add_rule, eventually

pytestmark = pytest.mark.asyncio
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def ready(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def test_the_command_serves_until_sigterm(api: ApiServer, tmp_path: Path) -> None:
    """It reads the kubeconfig and the file, applies the rule, answers /ready, stops on SIGTERM."""
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulated", "cluster": {"server": str(api.url).rstrip("/")}}],
        "users": [{"name": "tester", "user": {}}],
        "contexts": [{"name": "here", "context": {"cluster": "emulated", "user": "tester"}}],
        "current-context": "here",
    }
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(kubeconfig))
    port = free_port()
    (tmp_path / "controller.yaml").write_text(
        yaml.safe_dump({"namespaces": [NAMESPACE], "healthPort": port})
    )
    add_rule(api)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pipelines",
        "controller",
        "--config",
        str(tmp_path / "controller.yaml"),
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "KUBECONFIG": str(tmp_path / "kubeconfig"),
            "LOG_FORMAT": "json",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await eventually(
            lambda: api.stored(CRON_WORKFLOWS, NAMESPACE, "staging-automerge"), timeout=30
        )
        await eventually(
            lambda: "status" in (api.stored(RULES, NAMESPACE, "staging-automerge") or {})
        )
        assert await ready(f"http://127.0.0.1:{port}/ready")
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, stderr.decode()
    assert stdout == b""
    events = [json.loads(line)["event"] for line in stderr.decode().splitlines()]
    assert events[0] == "controller started"
    assert "rule applied" in events
    assert events[-1] == "controller stopped"
