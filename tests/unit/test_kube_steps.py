"""The steps' side of the one Kubernetes client: the same retries by verb as the controller's,
bounded so that a step never hangs, and no credential in any message.

Against the Kubernetes API of the Argo interpreter (on loopback), told to answer troubles first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from ai_operator.jobs.clients.kube import (
    API_URL_VARIABLE,
    STEP_RETRY,
    APIRequestError,
    APIUnreadable,
    KubeError,
    KubernetesAPI,
)
from ai_operator.jobs.log import REDACTED, redact
from tests.argo_interpreter import MemoCache

NAMESPACE = "ci"
LEASES = f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases"
CONFIG_MAP = f"/api/v1/namespaces/{NAMESPACE}/configmaps/outcomes-0"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.step-service-account-token-0b5e"


class Sleeps:
    """An injectable ``sleep`` that records each wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def lease(name: str = "rule", version: str | None = None) -> dict[str, object]:
    metadata: dict[str, object] = {"name": name}
    if version is not None:
        metadata["resourceVersion"] = version
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata}


@pytest.fixture
def cluster() -> Iterator[tuple[MemoCache, str]]:
    memo = MemoCache()
    with memo.serve(NAMESPACE) as url:
        yield memo, url


def api(url: str, sleeps: Sleeps, token: str | None = None) -> KubernetesAPI:
    return KubernetesAPI(url, token=token, sleep=sleeps, jitter=lambda: 0.0)


@pytest.mark.parametrize(
    ("method", "troubles", "status", "sent", "waits"),
    [
        pytest.param("GET", [503], 404, 2, [0.25], id="a-get-answered-503-is-asked-again"),
        pytest.param("GET", [500, 502, 429], 404, 4, [0.25, 0.5, 1.0],
                     id="a-get-is-asked-again-with-growing-waits"),
        pytest.param("POST", [429], 201, 2, [0.25], id="a-post-answered-429-was-not-processed"),
        pytest.param("POST", [504], None, 1, [], id="a-post-answered-504-is-not-repeated"),
        pytest.param("POST", [500], None, 1, [], id="a-post-answered-500-is-not-repeated"),
        pytest.param("POST", [503], None, 1, [], id="a-post-answered-503-without-retry-after"),
        pytest.param("PUT", [502], None, 1, [], id="a-put-answered-502-is-not-repeated"),
    ],
)  # fmt: skip
def test_what_a_step_asks_again(
    cluster: tuple[MemoCache, str],
    method: str,
    troubles: list[int],
    status: int | None,
    sent: int,
    waits: list[float],
) -> None:
    """Reads are asked again on a passing trouble; a write only when it cannot have been applied
    (a repeated write could answer 409, which the step would read as another writer's)."""
    memo, url = cluster
    memo.troubles = [(method, trouble) for trouble in troubles]
    sleeps = Sleeps()
    path = f"{LEASES}/rule" if method != "POST" else LEASES
    body = None if method == "GET" else lease(version="1" if method == "PUT" else None)

    if status is None:
        with pytest.raises(APIRequestError, match=f"{method} {path}: {troubles[-1]}"):
            api(url, sleeps).request(method, path, body)
    else:
        assert api(url, sleeps).request(method, path, body)[0] == status

    assert [asked for asked, _ in memo.requests] == [method] * sent
    assert sleeps.waits == waits


def test_a_get_that_keeps_failing_gives_up_within_seconds(cluster: tuple[MemoCache, str]) -> None:
    """A step is never held long by an API that is away: it goes on without what it wanted."""
    memo, url = cluster
    memo.troubles = [("GET", 503)] * STEP_RETRY.attempts
    sleeps = Sleeps()

    with pytest.raises(APIUnreadable, match=r"reading the shard: .* \(gave up after 4 attempts\)"):
        api(url, sleeps).get(CONFIG_MAP, "the shard")

    assert len(memo.requests) == STEP_RETRY.attempts
    assert sum(sleeps.waits) <= 2.0
    assert sum(STEP_RETRY.backoff.schedule(STEP_RETRY.attempts - 1)) <= 2.0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", f"{LEASES}/rule", id="read"),
        pytest.param("PUT", f"{LEASES}/rule", id="update"),
        pytest.param("POST", LEASES, id="create"),
    ],
)
def test_the_token_never_appears_in_an_error(
    cluster: tuple[MemoCache, str], method: str, path: str
) -> None:
    """Even when the API quotes the request's Authorization header back, the error does not."""
    memo, url = cluster
    memo.troubles = [(method, 500)] * STEP_RETRY.attempts
    body = None if method == "GET" else lease(version="1")

    with pytest.raises(APIRequestError) as raised:
        api(url, Sleeps(), token=TOKEN).request(method, path, body)

    assert TOKEN not in str(raised.value)
    assert f"Bearer {REDACTED}" in str(raised.value)
    assert redact(f"token {TOKEN}") == f"token {REDACTED}"  # registered with the log redactor


def test_404_and_409_are_answers(cluster: tuple[MemoCache, str]) -> None:
    """Absent (404) and someone-else-was-first (409) are what a step reads, not errors."""
    _, url = cluster
    steps = api(url, Sleeps())

    assert steps.request("GET", f"{LEASES}/rule") == (404, {})
    assert steps.get(f"{LEASES}/rule", "the lease") is None
    assert steps.request("POST", LEASES, lease())[0] == 201
    assert steps.request("POST", LEASES, lease()) == (409, {})
    assert steps.request("PUT", f"{LEASES}/rule", lease(version="7")) == (409, {})


def test_an_api_that_does_not_listen_is_asked_again_then_given_up() -> None:
    """A connection that cannot be opened sent nothing: even a write is tried again."""
    sleeps = Sleeps()
    with pytest.raises(APIRequestError, match="gave up after 4 attempts"):
        api("http://127.0.0.1:9", sleeps).request("POST", LEASES, lease())
    assert len(sleeps.waits) == STEP_RETRY.attempts - 1


@pytest.mark.parametrize(
    ("env", "url"),
    [
        pytest.param({API_URL_VARIABLE: "http://127.0.0.1:8001/"}, "http://127.0.0.1:8001",
                     id="the-variable-names-the-api"),
        pytest.param({}, None, id="neither-pod-nor-variable-no-api"),
        pytest.param({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"},
                     None, id="a-pod-without-a-service-account-token-no-api"),
    ],
)  # fmt: skip
def test_where_a_step_finds_the_api(env: dict[str, str], url: str | None) -> None:
    found = KubernetesAPI.from_environment(env)
    assert (found.url if found else None) == url


def test_a_variable_that_is_not_a_url_is_refused_by_name() -> None:
    with pytest.raises(APIRequestError, match=f"{API_URL_VARIABLE} must be an http"):
        KubernetesAPI.from_environment({API_URL_VARIABLE: "file:///etc/passwd"})


def test_the_steps_errors_are_the_clients() -> None:
    """One error tree: whoever catches KubeError catches what a step raises."""
    assert issubclass(APIRequestError, APIUnreadable)
    assert issubclass(APIUnreadable, KubeError)


def test_a_step_called_inside_an_event_loop_still_asks(cluster: tuple[MemoCache, str]) -> None:
    """The facade runs its request on a private loop, also when the caller is asynchronous."""
    _, url = cluster

    async def caller() -> tuple[int, dict[str, object]]:
        return api(url, Sleeps()).request("POST", LEASES, lease())

    assert asyncio.run(caller())[0] == 201
