"""The controller's Kubernetes API client: the few requests it makes, retried, over aiohttp.

Every request the controller sends goes through :class:`KubeClient`: get, list and watch,
server-side apply (``PATCH`` with ``application/apply-patch+yaml``, a field manager and
``force``), merge patches of the status subresource, create (events) and delete. Requests that
fail for a reason that may pass (a 5xx or 429 answer, a 409 conflict, a timeout, a lost
connection) are retried with exponential backoff, honouring ``Retry-After``.

Errors (module-wide tree)::

    KubeError              the API refused the request (status, reason, message); not retried
     ├── NotFound          404
     ├── Gone              410: a watch's resourceVersion is too old; list again
     └── Unavailable       retries exhausted (5xx, 409, 429, timeouts, connection errors)

Messages are the API server's own (``cronworkflows.argoproj.io "x" is forbidden: ...``); they
never contain the credentials, which are sent only in the ``Authorization`` header and never
logged. :func:`load_connection` reads the in-cluster service account, else the kubeconfig
(through the kubernetes package's loader, the only use of that package here).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from jobs.log import add_secrets

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
RETRIED_STATUSES = frozenset({409, 429, 500, 502, 503, 504})


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


def load_connection(environ: Mapping[str, str] | None = None) -> Connection:
    """The in-cluster service account when running in a pod, else the current kubeconfig."""
    env = os.environ if environ is None else environ
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    token_file = SERVICE_ACCOUNT_DIR / "token"
    if host and port and token_file.is_file():
        server_host = f"[{host}]" if ":" in host else host
        return Connection(
            server=f"https://{server_host}:{port}",
            token_file=str(token_file),
            ca_file=str(SERVICE_ACCOUNT_DIR / "ca.crt"),
        )
    return _kubeconfig_connection()


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

    def delay(self, attempt: int, retry_after: str | None) -> float:
        """Seconds to wait before attempt ``attempt + 1``."""
        if retry_after and retry_after.isdigit():
            return min(float(retry_after), self.max_backoff_seconds)
        base: float = min(self.backoff_seconds * 2**attempt, self.max_backoff_seconds)
        return base * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not security


class KubeClient:
    """The API requests the controller makes; use as ``async with KubeClient(...)``."""

    def __init__(
        self,
        connection: Connection,
        retry: RetryPolicy | None = None,
        user_agent: str = "ai-operator-controller",
    ) -> None:
        self._connection = connection
        self._retry = retry or RetryPolicy()
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

    async def get(self, resource: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        """One object, or None when it does not exist."""
        try:
            return await self._request("GET", resource.path(namespace, name))
        except NotFound:
            return None

    async def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> dict[str, Any]:
        """The collection in ``namespace`` (None: every namespace), optionally by labels."""
        params = {"labelSelector": label_selector} if label_selector else {}
        return await self._request("GET", resource.path(namespace), params=params)

    async def watch(
        self,
        resource: Resource,
        namespace: str | None,
        resource_version: str,
        timeout_seconds: int,
    ) -> AsyncIterator[dict[str, Any]]:
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
                    if event.get("type") == "ERROR":
                        status = event.get("object") or {}
                        what = f"WATCH {resource.path(namespace)}"
                        raise _error_of(int(status.get("code") or 500), status, what)
                    yield event
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unavailable(f"watch of {resource.plural} broke: {_describe(exc)}") from exc

    # --- writing ---------------------------------------------------------------------------

    async def apply(
        self, resource: Resource, document: Mapping[str, Any], field_manager: str
    ) -> dict[str, Any]:
        """Server-side apply of ``document`` (created when absent), taking over its fields."""
        metadata = document["metadata"]
        return await self._request(
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
            "PUT",
            resource.path(namespace, name),
            body=json.dumps(document),
            content_type="application/json",
            retried=RETRIED_STATUSES - {409},
        )

    async def create(
        self,
        resource: Resource,
        namespace: str,
        document: Mapping[str, Any],
        *,
        exists_is_final: bool = False,
    ) -> dict[str, Any]:
        """Create ``document`` in ``namespace``; with ``exists_is_final``, 409 is not retried."""
        return await self._request(
            "POST",
            resource.path(namespace),
            body=json.dumps(document),
            content_type="application/json",
            retried=RETRIED_STATUSES - {409} if exists_is_final else RETRIED_STATUSES,
        )

    async def delete(self, resource: Resource, namespace: str, name: str) -> bool:
        """Delete an object and, in the background, what it owns; False when already gone."""
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
        try:
            await self._request(
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
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: str | None = None,
        content_type: str | None = None,
        retried: frozenset[int] = RETRIED_STATUSES,
    ) -> dict[str, Any]:
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
                        return payload if isinstance(payload, dict) else {}
                    last = _error_of(response.status, payload, f"{method} {path}")
                    if response.status not in retried:
                        raise last
                    retry_after = response.headers.get("Retry-After")
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = Unavailable(f"{method} {path}: {_describe(exc)}")
            if attempt + 1 < self._retry.attempts:
                await asyncio.sleep(self._retry.delay(attempt, retry_after))
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
    text = f"{what}: {status} {message}"
    if status == 404:
        return NotFound(text, status, reason)
    if status == 410:
        return Gone(text, status, reason)
    return KubeError(text, status, reason)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
