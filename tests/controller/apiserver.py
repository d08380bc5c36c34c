"""An emulated Kubernetes API server for the controller's tests, built on kmock.

kmock's :class:`kmock.KubernetesEmulator` serves Kubernetes URLs over HTTP and records every
request; it stores objects "as is". :class:`ApiServer` adds the behaviour the controller relies
on, as the real API server has it:

- server-side apply: ``PATCH`` with ``application/apply-patch+yaml`` needs ``fieldManager``,
  creates the object when it is absent, and changes nothing (not even the resourceVersion) when
  the applied fields are already there;
- merge patches (RFC 7386); other patch types are refused (415);
- replace (PUT) with optimistic concurrency: 409 Conflict unless the body's resourceVersion is the
  stored one;
- cluster-scoped objects (stored with the namespace ``""``);
- the status subresource: ``.../status`` changes only ``status``, the main resource never does;
- metadata: ``uid``, ``resourceVersion`` (one counter for the whole server), ``generation``
  (raised when anything but metadata and status changes), ``creationTimestamp``,
  ``generateName``;
- label selectors on lists (``a=b``, ``a!=b``, ``a``);
- watches from a resourceVersion (``ADDED``/``MODIFIED``/``DELETED`` after it; 410 when it is
  older than :meth:`ApiServer.compact` allowed), ending after ``timeoutSeconds``;
- the garbage collector: deleting an object deletes what names it in ``ownerReferences``
  (at once; :attr:`ApiServer.garbage_collection` turns it off);
- failures on demand: :meth:`ApiServer.fail` answers the next matching requests with an error
  and changes nothing (or, with ``after_applying``, applies the request and then answers the
  error, as a proxy that timed out waiting for the answer would).
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp.web
import attrs
import kmock

from ai_operator.pipelines.controller.kube import Resource

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
# Resources whose status is a subresource (Argo's CRDs have none).
WITH_STATUS_SUBRESOURCE = frozenset({"prreconciliationrules", "cronjobs", "jobs"})

Key = tuple[str, str, str]  # (plural, namespace, name)


@dataclass
class Fault:
    """Answer the next ``times`` matching requests with ``status``."""

    method: str
    plural: str
    status: int
    times: int
    subresource: str = ""
    verb: str = ""
    """Only requests of this RBAC verb (``watch``, ``list``, ...); empty: any."""
    after_applying: bool = False
    """Apply the request, then answer ``status`` (the answer of a change that was made)."""


@dataclass(frozen=True)
class Call:
    """One request as RBAC sees it: (verb, group, resource, subresource)."""

    verb: str
    group: str
    resource: str
    subresource: str

    @property
    def as_tuple(self) -> tuple[str, str, str, str]:
        return (self.verb, self.group, self.resource, self.subresource)


@attrs.define(kw_only=True)
class ApiServer(kmock.KubernetesEmulator):
    """kmock's emulator with server-side apply, status subresources, watches and GC."""

    garbage_collection: bool = True
    _store: dict[Key, dict[str, Any]] = attrs.field(factory=dict, init=False)
    _groups: dict[str, str] = attrs.field(factory=dict, init=False)
    _history: list[tuple[int, str, dict[str, Any]]] = attrs.field(factory=list, init=False)
    _version: int = attrs.field(default=100, init=False)
    _compacted: int = attrs.field(default=0, init=False)
    _faults: list[Fault] = attrs.field(factory=list, init=False)
    _changed: asyncio.Event | None = attrs.field(default=None, init=False)
    _watch_epoch: int = attrs.field(default=0, init=False)
    _watch_epochs: dict[str, int] = attrs.field(factory=dict, init=False)

    # --- for tests ---------------------------------------------------------------------------

    def fail(
        self,
        method: str,
        plural: str,
        status: int,
        times: int = 1,
        subresource: str = "",
        *,
        verb: str = "",
        after_applying: bool = False,
    ) -> None:
        """Answer the next ``times`` ``method`` requests on ``plural`` with ``status``."""
        self._faults.append(
            Fault(method.upper(), plural, status, times, subresource, verb, after_applying)
        )

    def put(self, resource: Resource, document: dict[str, Any]) -> dict[str, Any]:
        """Create or replace an object directly, as another client would."""
        self._groups[resource.plural] = resource.group
        meta = document["metadata"]
        key = (resource.plural, meta.get("namespace", ""), meta["name"])
        old = self._store.get(key)
        new = copy.deepcopy(document)
        new.setdefault("apiVersion", resource.api_version)
        new.setdefault("kind", resource.kind)
        if old is None:
            self._created(new, key[1])
        else:
            new["metadata"] = old["metadata"] | new["metadata"]
            self._bump(old, new)
        self._store[key] = new
        self._record("ADDED" if old is None else "MODIFIED", resource.plural, new)
        return copy.deepcopy(new)

    def remove(self, resource: Resource, namespace: str, name: str) -> None:
        """Delete an object directly, as ``kubectl delete`` would."""
        self._delete((resource.plural, namespace, name))

    def stored(self, resource: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored object, or None."""
        found = self._store.get((resource.plural, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def stored_all(self, resource: Resource, namespace: str | None = None) -> list[dict[str, Any]]:
        """Every stored object of ``resource`` (in ``namespace``), oldest change first."""
        found = [
            copy.deepcopy(obj)
            for (plural, ns, _), obj in self._store.items()
            if plural == resource.plural and namespace in (None, ns)
        ]
        return sorted(found, key=lambda obj: int(obj["metadata"]["resourceVersion"]))

    def compact(self) -> None:
        """Forget the history so far: watches from an older resourceVersion get 410 Gone."""
        self._compacted = self._version

    def end_watches(self, plural: str | None = None) -> None:
        """End every open watch (of ``plural`` only, when given) now, as a restart would."""
        if plural is None:
            self._watch_epoch += 1
        else:
            self._watch_epochs[plural] = self._watch_epochs.get(plural, 0) + 1
        self._notify()

    @property
    def received(self) -> list[kmock.Request]:
        """Every request received, in order."""
        return list(iter(self))

    @property
    def calls(self) -> list[Call]:
        """Every Kubernetes request received, as RBAC names it."""
        return [call for request in self.received if (call := rbac_call(request)) is not None]

    # --- serving -----------------------------------------------------------------------------

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        namespace = _NAMESPACE_PATH.fullmatch(str(request.url.path))
        if namespace is not None and _method(request) == "GET":  # a Namespace, read by name
            found = self._store.get(("namespaces", "", namespace["name"]))
            if found is None:
                return _status(404, "NotFound", f'namespaces "{namespace["name"]}" not found')
            return _json(copy.deepcopy(found))
        if request.resource is None or request.resource.plural is None:
            return await kmock.RawHandler._handle(self, request)
        plural = request.resource.plural
        self._groups.setdefault(plural, request.resource.group or "")
        fault = self._take_fault(request)
        if fault is not None and not fault.after_applying:
            return _status(fault.status, "InjectedFailure", f"failing on purpose ({fault.status})")
        if fault is not None:
            await self._serve(request, plural)  # applied; the answer is lost
            return _status(fault.status, "InjectedFailure", f"lost the answer ({fault.status})")
        return await self._serve(request, plural)

    async def _serve(self, request: kmock.Request, plural: str) -> aiohttp.web.StreamResponse:
        method = _method(request)
        try:
            if method == "POST":
                return _json(self._create(request, plural), 201)
            if method == "PATCH":
                return _json(self._patch(request, plural))
            if method == "PUT" and request.name:
                return _json(self._replace(request, plural))
            if method == "DELETE" and request.name:
                gone = self._delete((plural, request.namespace or "", request.name))
                return _json(gone)
            if method in {"PUT", "DELETE"}:
                return _status(405, "MethodNotAllowed", f"{method} is not emulated")
        except _ApiProblem as problem:
            return _status(problem.code, problem.reason, problem.message)
        return await kmock.RawHandler._handle(self, request)

    async def _serve_list(self, request: kmock.Request) -> kmock.Payload:
        plural = _plural(request)
        match = _selector(request.params.get("labelSelector", ""))
        items = [
            copy.deepcopy(obj)
            for (kind, ns, _), obj in sorted(self._store.items())
            if kind == plural and request.namespace in (None, ns) and match(obj)
        ]
        return {
            "apiVersion": "v1",
            "kind": "List",
            "metadata": {"resourceVersion": str(self._version)},
            "items": items,
        }

    async def _serve_fetch(self, request: kmock.Request) -> kmock.Payload:
        found = self._store.get((_plural(request), request.namespace or "", request.name or ""))
        if found is None:
            raise kmock.KubernetesObjectNotFoundError()
        return copy.deepcopy(found)

    async def _serve_watch(self, request: kmock.Request) -> AsyncIterator[kmock.Payload]:
        yield b""  # send the headers at once
        plural = _plural(request)
        epoch = (self._watch_epoch, self._watch_epochs.get(plural, 0))
        since = int(request.params.get("resourceVersion") or 0)
        timeout = float(request.params.get("timeoutSeconds") or 3600)
        deadline = asyncio.get_running_loop().time() + timeout
        if since and since < self._compacted:
            yield {"type": "ERROR", "object": _status_doc(410, "Expired", "too old")}
            return
        if not since:
            for (kind, ns, _), obj in sorted(self._store.items()):
                if kind == plural and request.namespace in (None, ns):
                    yield {"type": "ADDED", "object": copy.deepcopy(obj)}
            since = self._version
        while epoch == (self._watch_epoch, self._watch_epochs.get(plural, 0)):
            for version, kind, event in list(self._history):
                namespace = event["object"]["metadata"].get("namespace")
                if version > since and kind == plural and request.namespace in (None, namespace):
                    since = version
                    yield copy.deepcopy(event)
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            try:
                await asyncio.wait_for(self._change().wait(), timeout=remaining)
            except TimeoutError:
                return

    # --- mutations ---------------------------------------------------------------------------

    def _create(self, request: kmock.Request, plural: str) -> dict[str, Any]:
        body = _body(request)
        namespace = request.namespace or body.get("metadata", {}).get("namespace", "")
        meta = body.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        key = (plural, namespace, meta.get("name", ""))
        if not key[2]:
            raise _ApiProblem(422, "Invalid", "metadata.name or generateName is required")
        if key in self._store:
            raise _ApiProblem(409, "AlreadyExists", f'{plural} "{key[2]}" already exists')
        if plural in WITH_STATUS_SUBRESOURCE:
            body.pop("status", None)
        self._created(body, namespace)
        self._store[key] = body
        self._record("ADDED", plural, body)
        return copy.deepcopy(body)

    def _patch(self, request: kmock.Request, plural: str) -> dict[str, Any]:
        key = (plural, request.namespace or "", request.name or "")
        content_type = _header(request, "Content-Type").split(";")[0].strip()
        body = _body(request)
        subresource = request.subresource or ""
        live = self._store.get(key)
        if content_type == APPLY:
            if not request.params.get("fieldManager"):
                raise _ApiProblem(400, "BadRequest", "fieldManager is required for apply")
            if subresource:
                raise _ApiProblem(415, "UnsupportedMediaType", "apply to a subresource")
            return self._apply(key, body, request.params["fieldManager"])
        if content_type != MERGE:
            raise _ApiProblem(415, "UnsupportedMediaType", f"{content_type!r} is not accepted")
        if live is None:
            raise _ApiProblem(404, "NotFound", f'{plural} "{key[2]}" not found')
        if subresource == "status":
            change = {"status": body.get("status")}
        elif subresource:
            raise _ApiProblem(404, "NotFound", f"no subresource {subresource!r}")
        elif plural in WITH_STATUS_SUBRESOURCE:
            change = {k: v for k, v in body.items() if k != "status"}
        else:
            change = body
        new = _merge(live, change)
        if new != live:
            self._bump(live, new)
            self._store[key] = new
            self._record("MODIFIED", plural, new)
        return copy.deepcopy(self._store[key])

    def _replace(self, request: kmock.Request, plural: str) -> dict[str, Any]:
        key = (plural, request.namespace or "", request.name or "")
        body = _body(request)
        live = self._store.get(key)
        if live is None:
            raise _ApiProblem(404, "NotFound", f'{plural} "{key[2]}" not found')
        sent = str(body.get("metadata", {}).get("resourceVersion") or "")
        if sent != live["metadata"]["resourceVersion"]:
            message = (
                f'Operation cannot be fulfilled on {plural} "{key[2]}": the object has been '
                "modified; please apply your changes to the latest version and try again"
            )
            raise _ApiProblem(409, "Conflict", message)
        new = copy.deepcopy(body)
        kept = ("uid", "creationTimestamp", "generation", "namespace", "name")
        new["metadata"] = new.get("metadata", {}) | {k: live["metadata"][k] for k in kept}
        if plural in WITH_STATUS_SUBRESOURCE:
            new["status"] = live.get("status")
        self._bump(live, new)
        self._store[key] = new
        self._record("MODIFIED", plural, new)
        return copy.deepcopy(new)

    def _apply(self, key: Key, body: dict[str, Any], manager: str) -> dict[str, Any]:
        plural, namespace, name = key
        meta = body.get("metadata", {})
        if meta.get("name") != name or meta.get("namespace", namespace) != namespace:
            raise _ApiProblem(400, "BadRequest", "the applied name or namespace differs")
        applied = {k: v for k, v in body.items() if k != "status"}
        live = self._store.get(key)
        if live is None:
            new = copy.deepcopy(applied)
            self._created(new, namespace)
            new["metadata"]["managedFields"] = [{"manager": manager, "operation": "Apply"}]
            self._store[key] = new
            self._record("ADDED", plural, new)
            return copy.deepcopy(new)
        new = copy.deepcopy(live)
        for field, value in applied.items():
            if field != "metadata":
                new[field] = copy.deepcopy(value)
        for field in ("labels", "annotations", "ownerReferences"):
            if field in meta:
                new["metadata"][field] = copy.deepcopy(meta[field])
        new["metadata"]["managedFields"] = [{"manager": manager, "operation": "Apply"}]
        if new != live:
            self._bump(live, new)
            self._store[key] = new
            self._record("MODIFIED", plural, new)
        return copy.deepcopy(self._store[key])

    def _delete(self, key: Key) -> dict[str, Any]:
        gone = self._store.pop(key, None)
        if gone is None:
            raise _ApiProblem(404, "NotFound", f'{key[0]} "{key[2]}" not found')
        self._record("DELETED", key[0], gone)
        if self.garbage_collection:
            uid = gone["metadata"]["uid"]
            for other, obj in list(self._store.items()):
                owners = obj["metadata"].get("ownerReferences") or []
                if other in self._store and any(ref.get("uid") == uid for ref in owners):
                    self._delete(other)
        return copy.deepcopy(gone)

    # --- bookkeeping -------------------------------------------------------------------------

    def _created(self, obj: dict[str, Any], namespace: str) -> None:
        meta = obj.setdefault("metadata", {})
        if namespace:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)  # cluster-scoped
        meta["uid"] = str(uuid.uuid4())
        meta["generation"] = 1
        meta.setdefault("creationTimestamp", _now())
        meta["resourceVersion"] = self._next_version()

    def _bump(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        def body(obj: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in obj.items() if k not in {"metadata", "status"}}

        if body(old) != body(new):
            new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
        new["metadata"]["resourceVersion"] = self._next_version()

    def _next_version(self) -> str:
        self._version += 1
        return str(self._version)

    def _record(self, kind: str, plural: str, obj: dict[str, Any]) -> None:
        version = int(obj["metadata"].get("resourceVersion") or self._version)
        if kind == "DELETED":
            version = int(self._next_version())
        self._history.append((version, plural, {"type": kind, "object": copy.deepcopy(obj)}))
        self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    def _change(self) -> asyncio.Event:
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    def _take_fault(self, request: kmock.Request) -> Fault | None:
        method = _method(request)
        plural = request.resource.plural if request.resource else None
        for fault in self._faults:
            if (
                fault.times > 0
                and fault.method == method
                and fault.plural == plural
                and fault.subresource == (request.subresource or "")
                and fault.verb in ("", getattr(rbac_call(request), "verb", ""))
            ):
                fault.times -= 1
                return fault
        return None


class _ApiProblem(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


_NAMESPACE_PATH = re.compile(r"/api/v1/namespaces/(?P<name>[a-z0-9-]+)")


def rbac_call(request: kmock.Request) -> Call | None:
    """The (verb, group, resource, subresource) RBAC checks for a request; None: not an API one."""
    if _NAMESPACE_PATH.fullmatch(str(request.url.path)) and _method(request) == "GET":
        return Call("get", "", "namespaces", "")
    if request.resource is None or request.resource.plural is None:
        return None
    method = _method(request)
    if method == "GET":
        verb = (
            "watch"
            if request.params.get("watch") == "true"
            else ("get" if request.name else "list")
        )
    else:
        verbs = {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}
        verb = verbs.get(method, method.lower())
        if verb == "delete" and not request.name:
            verb = "deletecollection"
    return Call(
        verb, request.resource.group or "", request.resource.plural, request.subresource or ""
    )


def calls_of(servers: Iterable[ApiServer]) -> set[tuple[str, str, str, str]]:
    """Every distinct request the servers received."""
    return {call.as_tuple for server in servers for call in server.calls}


def _method(request: kmock.Request) -> str:
    return str(getattr(request.method, "value", request.method)).upper()


def _plural(request: kmock.Request) -> str:
    assert request.resource is not None and request.resource.plural is not None
    return request.resource.plural


def _body(request: kmock.Request) -> dict[str, Any]:
    if isinstance(request.data, dict):
        return copy.deepcopy(request.data)
    raise _ApiProblem(400, "BadRequest", "the body is not a JSON (or YAML-as-JSON) object")


def _header(request: kmock.Request, name: str) -> str:
    return next((v for k, v in request.headers.items() if k.lower() == name.lower()), "")


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


def _selector(text: str) -> Any:
    """A predicate for a label selector of ``a=b``, ``a==b``, ``a!=b`` and ``a`` terms."""
    terms = [term.strip() for term in text.split(",") if term.strip()]

    def matches(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        for term in terms:
            if "!=" in term:
                key, value = term.split("!=", 1)
                if labels.get(key.strip()) == value.strip():
                    return False
            elif "=" in term:
                key, value = term.replace("==", "=").split("=", 1)
                if labels.get(key.strip()) != value.strip():
                    return False
            elif term not in labels:
                return False
        return True

    return matches


def _status_doc(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }


def _status(code: int, reason: str, message: str) -> aiohttp.web.Response:
    return aiohttp.web.json_response(_status_doc(code, reason, message), status=code)


def _json(payload: dict[str, Any], code: int = 200) -> aiohttp.web.Response:
    return aiohttp.web.Response(
        text=json.dumps(payload), status=code, content_type="application/json"
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
