"""The one Kubernetes API client: the controller's requests and the pipeline steps', retried.

The core is :class:`KubeClient` (asynchronous, over aiohttp), used by the controller. The
pipeline steps use :class:`KubernetesAPI`, a small synchronous facade that runs the same
requests on a private event loop: the same transport, the same retries, the same errors.

Every request goes through one loop (:meth:`KubeClient.send`): get, list and watch, server-side
apply (``PATCH`` with ``application/apply-patch+yaml``, a field manager and ``force``), merge
patches of the status subresource, create (events, the Lease), update (the Lease) and delete.
What is tried again depends on the verb, as the table of :mod:`jobs.clients.kube_retry` says:
reads, applies, patches and deletes on a passing trouble (a 5xx or 429 answer, a timeout, a lost
connection); a create only when it cannot have been applied (429, 503 with ``Retry-After``, a
connection that could not be opened), unless its object is named by the caller, in which case a
retried create that had been applied answers 409, read as "exists" (:class:`Created`). Waits are
capped exponential backoff with jitter, honouring ``Retry-After``. A watch is not retried here:
the caller opens it again after a backoff.

The steps' facade reads (GET) with the same retries, bounded to a few seconds so that a step
never hangs; its writes (PUT, POST) carry a ``resourceVersion`` or a name whose 409 answer the
caller reads ("someone else wrote first"), so they are repeated only when they cannot have been
applied (:data:`~jobs.clients.kube_retry.VERSIONED_WRITE`). 404 and 409 are answers to it.

Where the API is (:func:`load_connection` for the controller, :func:`step_connection` for the
steps): inside a pod, the service account's (``KUBERNETES_SERVICE_HOST``/``_PORT``, its token,
read at each request as it is rotated, and CA); for a step, ``AI_OPERATOR_KUBERNETES_API`` first
(a URL such as ``kubectl proxy``'s ``http://127.0.0.1:8001``, sent no credentials); for the
controller outside a cluster, the kubeconfig (through the kubernetes package's loader, the only
use of that package here).

Errors (module-wide tree)::

    KubeError              the API refused the request (status, reason, message); not retried
     ├── NotFound          404
     ├── Gone              410: a watch's resourceVersion is too old; list again
     ├── Unavailable       retries exhausted, or a failure not safe to repeat (a create's
     │                     timeout after sending)
     └── APIUnreadable     a step could not read what it wanted (it goes on without it)
          └── APIRequestError   a step's request failed: the API unreachable, or refusing

Messages are the API server's own (``cronworkflows.argoproj.io "x" is forbidden: ...``); they
never contain the credentials, which are sent only in the ``Authorization`` header, registered
with the log redactor (:func:`jobs.log.add_secrets`), and taken out of any message that quotes
them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import ssl
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp

from ai_operator.jobs.clients.kube_retry import (
    VERSIONED_WRITE,
    Backoff,
    Verb,
    VerbPolicy,
    policy_for,
)
from ai_operator.jobs.clients.kube_retry import retried_answer as _retried_answer
from ai_operator.jobs.clients.kube_retry import retried_failure as _retried_failure
from ai_operator.jobs.log import add_secrets, redact

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
CONFLICT_STATUS = 409
API_URL_VARIABLE = "AI_OPERATOR_KUBERNETES_API"
"""A step's API URL outside a pod (e.g. ``kubectl proxy``'s), sent no credentials."""


@dataclass(frozen=True)
class Resource:
    """A Kubernetes resource: its group, version, plural and kind."""

    group: str
    version: str
    plural: str
    kind: str

    @property
    def api_version(self) -> str:
        """``group/version``, or ``v1`` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str = ""
    ) -> str:
        """The URL path of the collection (in ``namespace``, or cluster-wide) or of one object."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace is not None:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{name}"
        if subresource:
            base += f"/{subresource}"
        return base


RULES = Resource("aioperator.io", "v1alpha1", "prreconciliationrules", "PRReconciliationRule")
CRON_WORKFLOWS = Resource("argoproj.io", "v1alpha1", "cronworkflows", "CronWorkflow")
WORKFLOWS = Resource("argoproj.io", "v1alpha1", "workflows", "Workflow")
CRON_JOBS = Resource("batch", "v1", "cronjobs", "CronJob")
JOBS = Resource("batch", "v1", "jobs", "Job")
EVENTS = Resource("", "v1", "events", "Event")
CONFIG_MAPS = Resource("", "v1", "configmaps", "ConfigMap")
LIMITS = Resource("aioperator.io", "v1alpha1", "prreconciliationlimits", "PRReconciliationLimits")
"""Cluster-scoped: list and watch them with ``namespace=None``."""
LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease")
NAMESPACES = Resource("", "v1", "namespaces", "Namespace")
"""Cluster-scoped; a step reads only its own (:mod:`jobs.clients.pause`)."""


class KubeError(Exception):
    """The API server refused a request, or could not be reached; says what and why."""

    def __init__(self, message: str, status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class NotFound(KubeError):
    """404: the object, or the resource itself (a kind the cluster does not have), is absent."""


class Gone(KubeError):
    """410: a watch started from a resourceVersion the server no longer has."""


class Unavailable(KubeError):
    """The request kept failing for a reason that may pass; it was retried until the limit."""


class APIUnreadable(KubeError):
    """A step could not read an object; the message says why (never a credential)."""


class APIRequestError(APIUnreadable):
    """A step's request failed: the API unreachable, or refusing (never a credential)."""


@dataclass(frozen=True)
class Connection:
    """Where the API server is and how to authenticate; ``repr`` never shows a credential."""

    server: str
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None
    """Read at each request: projected service-account tokens are rotated."""
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    verify: bool = True

    def __post_init__(self) -> None:
        if self.token:
            add_secrets(self.token)  # never logged, whatever a message quotes

    def authorization(self) -> str | None:
        """The ``Authorization`` header's value, if any."""
        token = self.token
        if self.token_file:
            token = Path(self.token_file).read_text(encoding="utf-8").strip()
            add_secrets(token)
        return f"Bearer {token}" if token else None

    def ssl_context(self) -> ssl.SSLContext | bool:
        """TLS settings for aiohttp (``True`` for the system's CAs, ``False`` to skip checks)."""
        if not self.server.startswith("https:"):
            return True
        if not self.verify:
            return False
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.client_cert:
            context.load_cert_chain(self.client_cert, self.client_key)
        return context


def in_cluster(environ: Mapping[str, str] | None = None) -> Connection | None:
    """The pod's service account (``KUBERNETES_SERVICE_HOST``/``_PORT``, token, CA); or None."""
    env = os.environ if environ is None else environ
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    token_file = SERVICE_ACCOUNT_DIR / "token"
    if not (host and port and token_file.is_file()):
        return None
    server_host = f"[{host}]" if ":" in host else host
    return Connection(
        server=f"https://{server_host}:{port}",
        token_file=str(token_file),
        ca_file=str(SERVICE_ACCOUNT_DIR / "ca.crt"),
    )


def load_connection(environ: Mapping[str, str] | None = None) -> Connection:
    """The controller's API: the in-cluster service account in a pod, else the kubeconfig."""
    return in_cluster(environ) or _kubeconfig_connection()


def step_connection(environ: Mapping[str, str] | None = None) -> Connection | None:
    """A step's API: ``AI_OPERATOR_KUBERNETES_API``, else the pod's service account; or None.

    Raises :class:`APIRequestError` when the variable is not an http(s) URL.
    """
    env = os.environ if environ is None else environ
    override = env.get(API_URL_VARIABLE, "").strip()
    if override:
        return Connection(server=_http_url(override))
    return in_cluster(env)


def _http_url(url: str) -> str:
    if urlsplit(url).scheme not in {"http", "https"}:
        raise APIRequestError(f"{API_URL_VARIABLE} must be an http(s) URL, not {url!r}")
    return url.rstrip("/")


def _kubeconfig_connection() -> Connection:
    from kubernetes import client, config  # noqa: PLC0415 - only outside a cluster

    configuration = client.Configuration()
    try:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration, persist_config=False
        )
    except (config.ConfigException, OSError) as exc:
        raise KubeError(f"no in-cluster service account and no usable kubeconfig: {exc}") from exc
    header = (configuration.api_key or {}).get("authorization", "")
    token = header.removeprefix("Bearer ").strip() or None
    if token:
        add_secrets(token)
    return Connection(
        server=configuration.host,
        token=token,
        ca_file=configuration.ssl_ca_cert,
        client_cert=configuration.cert_file,
        client_key=configuration.key_file,
        verify=bool(configuration.verify_ssl),
    )


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a request that may succeed later is tried again."""

    attempts: int = 5
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 15.0
    timeout_seconds: float = 30.0
    """Of one request (a watch: of each read)."""

    @property
    def backoff(self) -> Backoff:
        """The waits between attempts."""
        return Backoff(first=self.backoff_seconds, cap=self.max_backoff_seconds)

    def delay(self, attempt: int, retry_after: str | None, jitter: float | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1``."""
        share = random.random() if jitter is None else jitter  # noqa: S311 - jitter, not security
        return self.backoff.delay(attempt, share, retry_after)


@dataclass(frozen=True)
class Created:
    """What a create found: the object it made, or that one of that name already exists."""

    object: dict[str, Any] | None
    """The created object as the API server returned it; None when it existed."""

    @property
    def exists(self) -> bool:
        """The object was there already (409 AlreadyExists): nothing was created."""
        return self.object is None


class WatchEventType(StrEnum):
    """What a watch event says happened (``ERROR`` is raised, never yielded)."""

    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    BOOKMARK = "BOOKMARK"


_WATCH_TYPES = frozenset(kind.value for kind in WatchEventType)


@dataclass(frozen=True)
class WatchEvent:
    """One change a watch reported: what happened, and the object as it is (or was)."""

    type: WatchEventType
    object: dict[str, Any]

    @property
    def resource_version(self) -> str | None:
        """The object's resourceVersion: where a watch started again goes on from."""
        version = (self.object.get("metadata") or {}).get("resourceVersion")
        return str(version) if version else None


@dataclass(frozen=True)
class ObjectList:
    """A list's objects and the resourceVersion to watch from."""

    items: list[dict[str, Any]]
    resource_version: str = ""

    @classmethod
    def of(cls, payload: Mapping[str, Any]) -> ObjectList:
        """The list the API server answered (a missing ``items`` is an empty list)."""
        items = payload.get("items") or []
        version = (payload.get("metadata") or {}).get("resourceVersion")
        return cls([item for item in items if isinstance(item, dict)], str(version or ""))


Sleep = Callable[[float], Awaitable[None]]


class KubeClient:
    """The API requests the controller makes; use as ``async with KubeClient(...)``."""

    def __init__(
        self,
        connection: Connection,
        retry: RetryPolicy | None = None,
        user_agent: str = "ai-operator-controller",
        *,
        sleep: Sleep = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._connection = connection
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._jitter = jitter
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> KubeClient:
        connector = aiohttp.TCPConnector(ssl=self._connection.ssl_context())
        self._session = aiohttp.ClientSession(
            self._connection.server.rstrip("/"),
            connector=connector,
            read_bufsize=2**20,
            headers={"User-Agent": self._user_agent, "Accept": "application/json"},
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- reading ---------------------------------------------------------------------------

    async def get(
        self, resource: Resource, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        """One object (``namespace`` None: a cluster-scoped one), or None when it does not exist."""
        try:
            return await self._request(Verb.GET, "GET", resource.path(namespace, name))
        except NotFound:
            return None

    async def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> ObjectList:
        """The collection in ``namespace`` (None: every namespace), optionally by labels."""
        params = {"labelSelector": label_selector} if label_selector else {}
        payload = await self._request(Verb.LIST, "GET", resource.path(namespace), params=params)
        return ObjectList.of(payload)

    async def watch(
        self,
        resource: Resource,
        namespace: str | None,
        resource_version: str,
        timeout_seconds: int,
    ) -> AsyncIterator[WatchEvent]:
        """Changes after ``resource_version``, until the server ends the watch.

        Yields ``ADDED``, ``MODIFIED``, ``DELETED`` and ``BOOKMARK`` events; raises :class:`Gone`
        when the version is too old, :class:`KubeError` for any other error event.
        """
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        session = self._open_session()
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self._retry.timeout_seconds, sock_read=timeout_seconds + 30
        )
        try:
            async with session.get(
                resource.path(namespace), params=params, headers=self._auth(), timeout=timeout
            ) as response:
                if response.status >= 400:
                    what = f"WATCH {resource.path(namespace)}"
                    raise _error_of(response.status, await _json_or_text(response), what)
                async for line in response.content:
                    if not line.strip():
                        continue
                    try:
                        event = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise Unavailable(f"watch of {resource.plural}: not JSON: {exc}") from exc
                    kind, item = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        what = f"WATCH {resource.path(namespace)}"
                        raise _error_of(int(item.get("code") or 500), item, what)
                    if kind in _WATCH_TYPES and isinstance(item, dict):
                        yield WatchEvent(WatchEventType(kind), item)
        except (aiohttp.ClientError, TimeoutError) as exc:
            broke = redact(f"watch of {resource.plural} broke: {_describe(exc)}")
            raise Unavailable(broke) from exc

    # --- writing ---------------------------------------------------------------------------

    async def apply(
        self, resource: Resource, document: Mapping[str, Any], field_manager: str
    ) -> dict[str, Any]:
        """Server-side apply of ``document`` (created when absent), taking over its fields."""
        metadata = document["metadata"]
        return await self._request(
            Verb.APPLY,
            "PATCH",
            resource.path(metadata["namespace"], metadata["name"]),
            params={"fieldManager": field_manager, "force": "true"},
            body=json.dumps(document),  # JSON is YAML: the apply content type accepts it
            content_type=APPLY_PATCH,
        )

    async def patch_status(
        self, resource: Resource, namespace: str, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Merge ``status`` into the object's status subresource (``None`` values remove)."""
        return await self._request(
            Verb.PATCH,
            "PATCH",
            resource.path(namespace, name, "status"),
            body=json.dumps({"status": status}),
            content_type=MERGE_PATCH,
        )

    async def patch(
        self, resource: Resource, namespace: str, name: str, change: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Merge ``change`` into the object (RFC 7386 merge patch)."""
        return await self._request(
            Verb.PATCH,
            "PATCH",
            resource.path(namespace, name),
            body=json.dumps(change),
            content_type=MERGE_PATCH,
        )

    async def update(
        self, resource: Resource, namespace: str, document: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Replace ``document`` (a PUT); 409 when its ``resourceVersion`` is no longer current.

        A conflict is the answer, not a passing trouble: it is not retried.
        """
        name = document["metadata"]["name"]
        return await self._request(
            Verb.UPDATE,
            "PUT",
            resource.path(namespace, name),
            body=json.dumps(document),
            content_type="application/json",
        )

    async def create(
        self, resource: Resource, namespace: str, document: Mapping[str, Any]
    ) -> Created:
        """Create ``document`` in ``namespace``; 409 AlreadyExists is :attr:`Created.exists`.

        A document with ``metadata.name`` is created at most once however often the request is
        repeated, so it is retried like a read; one with only ``generateName`` is repeated only
        when it cannot have been applied (see :mod:`jobs.clients.kube_retry`).
        """
        named = bool((document.get("metadata") or {}).get("name"))
        try:
            created = await self._request(
                Verb.CREATE,
                "POST",
                resource.path(namespace),
                body=json.dumps(document),
                content_type="application/json",
                policy=policy_for(Verb.CREATE, named=named),
            )
        except KubeError as exc:
            if exc.status == CONFLICT_STATUS:
                return Created(None)
            raise
        return Created(created)

    async def delete(self, resource: Resource, namespace: str, name: str) -> bool:
        """Delete an object and, in the background, what it owns; False when already gone."""
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
        try:
            await self._request(
                Verb.DELETE,
                "DELETE",
                resource.path(namespace, name),
                body=json.dumps(body),
                content_type="application/json",
            )
        except NotFound:
            return False
        return True

    # --- the one request loop --------------------------------------------------------------

    async def _request(
        self,
        verb: Verb,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: str | None = None,
        content_type: str | None = None,
        policy: VerbPolicy | None = None,
    ) -> dict[str, Any]:
        """The answer's JSON object of :meth:`send`."""
        answer = await self.send(
            verb,
            method,
            path,
            params=params,
            body=body,
            content_type=content_type,
            policy=policy,
        )
        return answer[1]

    async def send(
        self,
        verb: Verb,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: str | None = None,
        content_type: str | None = None,
        policy: VerbPolicy | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """Send one request, trying it again as the verb's policy allows: ``(status, JSON)``.

        Raises :class:`KubeError` (:class:`NotFound` for 404) for an answer of 400 or more
        that is not tried again, :class:`Unavailable` when the tries ran out.
        """
        rules = policy or policy_for(verb)
        session = self._open_session()
        timeout = aiohttp.ClientTimeout(total=self._retry.timeout_seconds)
        last: KubeError | None = None
        for attempt in range(self._retry.attempts):
            retry_after: str | None = None
            headers = self._auth()
            if content_type:
                headers["Content-Type"] = content_type
            try:
                async with session.request(
                    method, path, params=params, data=body, headers=headers, timeout=timeout
                ) as response:
                    payload = await _json_or_text(response)
                    if response.status < 400:
                        return response.status, payload if isinstance(payload, dict) else {}
                    last = _error_of(response.status, payload, f"{method} {path}")
                    retry_after = response.headers.get("Retry-After")
                    if not _retried_answer(rules, response.status, retry_after):
                        raise last
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = Unavailable(redact(f"{method} {path}: {_describe(exc)}"))
                if not _retried_failure(rules, sent=_maybe_sent(exc)):
                    raise Unavailable(f"{last} (not repeated: it may have been applied)") from exc
            if attempt + 1 < self._retry.attempts:
                await self._sleep(self._retry.delay(attempt, retry_after, self._jitter()))
        assert last is not None  # the loop ran at least once
        raise Unavailable(
            f"{last} (gave up after {self._retry.attempts} attempts)", last.status, last.reason
        )

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("KubeClient is used outside of `async with`")
        return self._session

    def _auth(self) -> dict[str, str]:
        authorization = self._connection.authorization()
        return {"Authorization": authorization} if authorization else {}


async def _json_or_text(response: aiohttp.ClientResponse) -> Any:
    text = await response.text()
    try:
        return json.loads(text) if text else {}
    except json.JSONDecodeError:
        return text


def _error_of(status: int, payload: Any, what: str) -> KubeError:
    """The error for an API answer: its ``Status`` message when it has one."""
    if isinstance(payload, dict):
        message = str(payload.get("message") or payload.get("reason") or f"HTTP {status}")
        reason = str(payload.get("reason") or "")
    else:
        message, reason = (str(payload).strip()[:200] or f"HTTP {status}"), ""
    text = redact(f"{what}: {status} {message}")
    if status == 404:
        return NotFound(text, status, reason)
    if status == 410:
        return Gone(text, status, reason)
    return KubeError(text, status, reason)


def _maybe_sent(exc: BaseException) -> bool:
    """Whether a request that failed with ``exc`` may have reached the API server.

    Only a connection that could not be opened proves that nothing was sent.
    """
    return not isinstance(exc, aiohttp.ClientConnectorError)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# --- the steps' synchronous facade ---------------------------------------------------------

STEP_RETRY = RetryPolicy(
    attempts=4, backoff_seconds=0.25, max_backoff_seconds=2.0, timeout_seconds=10.0
)
"""A step's patience: three waits of at most 0.25, 0.5 and 1 s (2 s with ``Retry-After``), so
that a step never hangs on an API that is away; what it wanted is then done without."""

_T = TypeVar("_T")


class _Loop:
    """A private event loop on a daemon thread, with one open :class:`KubeClient` on it.

    Opened at the facade's first request and kept for its life, so that a step's requests share
    one connection pool (a GET costs about half as much as with a session per request); closed
    by :meth:`KubernetesAPI.close`, or when the facade is collected.
    """

    def __init__(self, client: KubeClient) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = client
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="kubernetes-api", daemon=True
        )
        self._thread.start()
        self.submit(client.__aenter__())

    def submit(self, work: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()

    def close(self) -> None:
        if self.loop.is_closed():
            return
        with contextlib.suppress(Exception):
            self.submit(self.client.__aexit__(None, None, None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class KubernetesAPI:
    """The steps' requests: the outcome index's ConfigMaps, the rule's Lease, the run's Workflow.

    Synchronous: each request runs :class:`KubeClient`'s on a private event loop (one thread,
    one connection pool for the facade's life), with its retries by verb (GET retried, PUT and
    POST only when they cannot have been applied) and its errors, turned into the steps'
    :class:`APIUnreadable` and :class:`APIRequestError`. Usable as a context manager;
    :meth:`close` ends the loop (also done when the facade is collected).
    """

    def __init__(
        self,
        url: str | Connection,
        *,
        token: str | None = None,
        ca_file: str | None = None,
        retry: RetryPolicy = STEP_RETRY,
        sleep: Sleep = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if isinstance(url, Connection):
            self._connection = url
        else:
            self._connection = Connection(server=_http_url(url), token=token, ca_file=ca_file)
        self.url = self._connection.server.rstrip("/")
        self._retry = retry
        self._sleep = sleep
        self._jitter = jitter
        self._loop: _Loop | None = None
        self._opening = threading.Lock()

    def __enter__(self) -> KubernetesAPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool and stop the private loop; a later request opens them again."""
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.close()

    def _client_loop(self) -> _Loop:
        with self._opening:
            if self._loop is None:
                client = KubeClient(
                    self._connection,
                    self._retry,
                    "ai-operator-step",
                    sleep=self._sleep,
                    jitter=self._jitter,
                )
                self._loop = _Loop(client)
                weakref.finalize(self, self._loop.close)
            return self._loop

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> KubernetesAPI | None:
        """The API of ``AI_OPERATOR_KUBERNETES_API``, else of the pod's service account; or None.

        Raises :class:`APIRequestError` when the variable is not an http(s) URL.
        """
        connection = step_connection(env)
        return None if connection is None else cls(connection)

    def get(self, path: str, what: str) -> dict[str, Any] | None:
        """The JSON object at ``path``; None when it does not exist (raises APIUnreadable)."""
        try:
            return self._send(Verb.GET, "GET", path, None)[1]
        except NotFound:
            return None
        except KubeError as exc:
            raise APIUnreadable(f"reading {what}: {exc}", exc.status, exc.reason) from exc

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """One request: ``(status, JSON body)``; 404 and 409 are answers, not errors.

        GET is tried again on a passing trouble; PUT and POST only when they cannot have been
        applied. Raises APIRequestError when the API cannot be reached or refuses otherwise.
        """
        verbs = {"GET": Verb.GET, "PUT": Verb.UPDATE, "POST": Verb.CREATE}
        if method not in verbs:
            raise ValueError(f"the steps send GET, PUT or POST, not {method}")
        try:
            return self._send(verbs[method], method, path, body)
        except KubeError as exc:
            if exc.status in (404, CONFLICT_STATUS):
                return exc.status, {}
            raise APIRequestError(str(exc), exc.status, exc.reason) from exc

    def _send(
        self, verb: Verb, method: str, path: str, body: dict[str, Any] | None
    ) -> tuple[int, dict[str, Any]]:
        loop = self._client_loop()
        return loop.submit(
            loop.client.send(
                verb,
                method,
                path,
                body=None if body is None else json.dumps(body),
                content_type=None if body is None else "application/json",
                policy=None if verb is Verb.GET else VERSIONED_WRITE,
            )
        )
