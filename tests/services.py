"""Start Debian's real Prometheus and Pushgateway on loopback for tests.

Each context manager starts one server on 127.0.0.1 on a free port with its state in a temporary
directory, waits for ``/-/ready`` with a deadline, yields the base URL and stops the server on exit.
Binaries are taken from ``.cache/services/bin`` (where ``scripts/install-services`` unpacks
Debian's packages, installing nothing on the system), else from ``PATH``. Nothing here installs
anything: a missing binary raises :class:`ServiceError` naming ``scripts/install-services``.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PUSHGATEWAY_BINARY = "prometheus-pushgateway"
PROMETHEUS_BINARY = "prometheus"
PROMTOOL_BINARY = "promtool"
BINARIES = (PUSHGATEWAY_BINARY, PROMETHEUS_BINARY, PROMTOOL_BINARY)
UNPACKED = Path(__file__).resolve().parents[1] / ".cache" / "services" / "bin"
READY_DEADLINE_SECONDS = 20.0
STOP_DEADLINE_SECONDS = 5.0


class ServiceError(RuntimeError):
    """A server could not be started (binary missing, early exit, not ready in time)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _which(name: str) -> str | None:
    unpacked = UNPACKED / name
    return str(unpacked) if unpacked.exists() else shutil.which(name)


def find_binary(name: str) -> str:
    """The path of a server binary, or a ServiceError that says how to install it."""
    path = _which(name)
    if path is None:
        raise ServiceError(f"{name} is not installed: run scripts/install-services")
    return path


def missing_binaries() -> list[str]:
    """The servers and tools of :data:`BINARIES` found neither unpacked nor on ``PATH``."""
    return [name for name in BINARIES if _which(name) is None]


def unavailable_reason() -> str | None:
    """Why tests that need the servers cannot run here, or None when they can."""
    missing = missing_binaries()
    if not missing:
        return None
    return f"{', '.join(missing)} not installed: run scripts/install-services"


@contextmanager
def pushgateway() -> Iterator[str]:
    """Run prometheus-pushgateway on 127.0.0.1; yield its base URL (``http://127.0.0.1:PORT``)."""
    binary = find_binary(PUSHGATEWAY_BINARY)
    with tempfile.TemporaryDirectory(prefix="pushgateway-") as tmp:
        port = free_port()
        args = [
            binary,
            f"--web.listen-address=127.0.0.1:{port}",
            f"--persistence.file={Path(tmp) / 'metrics.db'}",
        ]
        with _running(args, Path(tmp) / "server.log", f"http://127.0.0.1:{port}") as url:
            yield url


@contextmanager
def prometheus(scrape_url: str, scrape_interval: str = "1s") -> Iterator[str]:
    """Run Prometheus scraping ``scrape_url`` (honor_labels on); yield its base URL."""
    binary = find_binary(PROMETHEUS_BINARY)
    with tempfile.TemporaryDirectory(prefix="prometheus-") as tmp:
        config = Path(tmp) / "prometheus.yml"
        config.write_text(json.dumps(_scrape_config(scrape_url, scrape_interval)))
        port = free_port()
        args = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={Path(tmp) / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        with _running(args, Path(tmp) / "server.log", f"http://127.0.0.1:{port}") as url:
            yield url


def query_prometheus(prometheus_url: str, promql: str, timeout: float = 2.0) -> list[Any]:
    """The ``result`` list of an instant query through Prometheus' HTTP API."""
    query = urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(f"{prometheus_url}/api/v1/query?{query}", timeout=timeout) as resp:
        body = json.load(resp)
    if body.get("status") != "success":
        raise ServiceError(f"query {promql!r} failed: {body}")
    result: list[Any] = body["data"]["result"]
    return result


def wait_for_series(prometheus_url: str, promql: str, deadline_seconds: float) -> list[Any]:
    """Poll an instant query until it returns a series; ServiceError when the deadline passes."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        result = query_prometheus(prometheus_url, promql)
        if result:
            return result
        time.sleep(0.25)
    raise ServiceError(f"no series for {promql!r} within {deadline_seconds} s")


def _scrape_config(scrape_url: str, scrape_interval: str) -> dict[str, Any]:
    """A Prometheus configuration (JSON is YAML) with one job scraping ``scrape_url``."""
    target = urllib.parse.urlsplit(scrape_url)
    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [
            {
                "job_name": "pushgateway",
                "honor_labels": True,
                "scheme": target.scheme or "http",
                "metrics_path": target.path if target.path not in ("", "/") else "/metrics",
                "static_configs": [{"targets": [target.netloc]}],
            }
        ],
    }


@contextmanager
def _running(args: Sequence[str], log_path: Path, url: str) -> Iterator[str]:
    """Run a server process, wait until it is ready, and stop it on exit."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_ready(process, url, log_path)
        yield url
    finally:
        _stop(process)


def _wait_ready(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    """Poll ``/-/ready`` until it answers 200; ServiceError on early exit or deadline."""
    deadline = time.monotonic() + READY_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceError(f"{process.args!r} exited early:\n{_tail(log_path)}")
        if _is_ready(url):
            return
        time.sleep(0.05)
    raise ServiceError(f"{url} not ready within {READY_DEADLINE_SECONDS} s:\n{_tail(log_path)}")


def _is_ready(url: str) -> bool:
    """Whether the server answers 200 on ``/-/ready``."""
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1.0) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate the process and wait for it; kill it if it does not stop in time."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tail(log_path: Path, lines: int = 20) -> str:
    """The last lines of a server's log, for error messages."""
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
