"""The pipeline's memory of decisions: Argo's memoization ConfigMaps, read through the API.

Each pull request's ``decide -> act`` branch is memoized by Argo under its decision key
(:func:`jobs.policy.reuse.decision_key`) in one of 16 ConfigMaps ``<prefix>-0`` ...
``<prefix>-f`` (the key's first hex digit, :func:`jobs.policy.reuse.memo_shard`), so that no
single ConfigMap nears its 1 MiB limit. Argo writes each entry as::

    {"nodeID": ..., "outputs": {"parameters": [{"name": "outcome", "value": "<JSON>", ...}]},
     "creationTimestamp": "2026-11-30T12:00:00Z", "lastHitTimestamp": ...}

The fetch step reads them (read-only: ``get`` on ConfigMaps, in the workflow's namespace) to learn
which pull requests were settled on the facts they have now and when each was last decided, so
that the run's cap goes to the least recently decided. The outcome names its pull request
(``"pr": "owner/name#7"``; entries without one are skipped) and the key of the facts its decide
and act steps both saw (``"facts"``): an entry is remembered under that key, not under the key
Argo saved it under, so a branch whose facts changed between fetch and act, or that fell back,
is decided again. Keys holding such an entry are reported as ``held``, so that fetch never
sends a branch under a key Argo would replay it from.

Where the API is: inside a pod, the service account's (``KUBERNETES_SERVICE_HOST``/``_PORT``,
its token and CA); else ``AI_OPERATOR_KUBERNETES_API`` (a URL such as ``kubectl proxy``'s
``http://127.0.0.1:8001``, sent no credentials).

Errors: :class:`MemoUnreadable` (the API unreachable, or refusing, chained): the caller goes on
without a memory, which costs model calls and fairness, never safety. The token is sent only in
the ``Authorization`` header and never appears in a message.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from jobs.policy.reuse import MEMO_SHARDS, Remembered

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
API_URL_VARIABLE = "AI_OPERATOR_KUBERNETES_API"
OUTCOME = "outcome"
"""The memoized branch's output parameter (the compiler names it so)."""
TIMEOUT_SECONDS = 10.0


class APIUnreadable(Exception):
    """An object could not be read from the API; the message says why (never a credential)."""


class MemoUnreadable(APIUnreadable):
    """The memo ConfigMaps could not be read; the message says why (never a credential)."""


class KubernetesAPI:
    """The steps' read-only requests: a ConfigMap's data (fetch), the run's Workflow (report)."""

    def __init__(self, url: str, *, token: str | None = None, ca_file: str | None = None) -> None:
        if urlsplit(url).scheme not in {"http", "https"}:
            raise MemoUnreadable(f"{API_URL_VARIABLE} must be an http(s) URL, not {url!r}")
        self.url = url.rstrip("/")
        self._token = token
        self._context = ssl.create_default_context(cafile=ca_file) if ca_file else None

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> KubernetesAPI | None:
        """The API of the pod's service account, else ``AI_OPERATOR_KUBERNETES_API``; or None."""
        override = env.get(API_URL_VARIABLE, "").strip()
        if override:
            return cls(override)
        host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
        token_file = SERVICE_ACCOUNT / "token"
        if not (host and port and token_file.is_file()):
            return None
        server = f"[{host}]" if ":" in host else host
        token = token_file.read_text(encoding="utf-8").strip()
        return cls(f"https://{server}:{port}", token=token, ca_file=str(SERVICE_ACCOUNT / "ca.crt"))

    def config_map_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """The ``data`` of ConfigMap ``namespace/name``; None when it does not exist."""
        path = f"/api/v1/namespaces/{quote(namespace)}/configmaps/{quote(name)}"
        try:
            document = self.get(path, f"ConfigMap {name}")
        except APIUnreadable as exc:
            raise MemoUnreadable(str(exc)) from exc
        if document is None:
            return None
        data = document.get("data")
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def get(self, path: str, what: str) -> dict[str, Any] | None:
        """The JSON object at ``path``; None when it does not exist (raises APIUnreadable)."""
        try:
            document = self._send("GET", path)[1]
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise APIUnreadable(f"reading {what} answered HTTP {exc.code}") from exc
        except (OSError, ValueError) as exc:
            raise APIUnreadable(f"reading {what} failed: {exc}") from exc
        return document if isinstance(document, dict) else {}

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """One request: ``(status, JSON body)``; 404 and 409 are answers, not errors.

        Raises MemoUnreadable when the API cannot be reached or refuses otherwise.
        """
        try:
            status, document = self._send(method, path, body)
            return status, document if isinstance(document, dict) else {}
        except urllib.error.HTTPError as exc:
            if exc.code in (404, 409):
                return exc.code, {}
            raise MemoUnreadable(f"{method} {path} answered HTTP {exc.code}") from exc
        except (OSError, ValueError) as exc:
            raise MemoUnreadable(f"{method} {path} failed: {exc}") from exc

    def _send(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """``(status, decoded JSON)`` of one request; urllib's errors propagate to the caller."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(  # noqa: S310 - http(s) only
            self.url + path, data=data, method=method, headers=headers
        )
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        with urllib.request.urlopen(  # noqa: S310 - the API server's URL, http(s) only
            request, timeout=TIMEOUT_SECONDS, context=self._context
        ) as answer:
            return answer.status, json.load(answer)


class ArgoMemo:
    """A :class:`~jobs.reconcile.ports.DecisionMemory` over Argo's memo ConfigMaps (read-only)."""

    def __init__(self, api: KubernetesAPI, namespace: str, prefix: str) -> None:
        self._api = api
        self._namespace = namespace
        self._prefix = prefix

    def config_maps(self) -> list[str]:
        """The ConfigMaps the memo is sharded over."""
        return [f"{self._prefix}-{shard}" for shard in MEMO_SHARDS]

    def recall(self, rule: str) -> dict[str, Remembered]:
        """Per pull request, its newest memoized decision: key and time (raises MemoUnreadable).

        ``rule`` is not needed: the ConfigMaps are the rule's own.
        """
        found: dict[str, Remembered] = {}
        held: dict[str, set[str]] = {}
        for name in self.config_maps():
            for key, raw in (self._api.config_map_data(self._namespace, name) or {}).items():
                entry = _entry(key, raw)
                if entry is None:
                    continue
                pr, remembered = entry
                if remembered.key != key.split("-r")[0] or not remembered.key:
                    held.setdefault(pr, set()).add(key)  # never to be replayed under its key
                if pr not in found or remembered.decided_at > found[pr].decided_at:
                    found[pr] = remembered
        return {
            pr: replace(remembered, held=frozenset(held.get(pr, ())))
            for pr, remembered in found.items()
        }

    def keep(self, rule: str, entries: Mapping[str, Remembered]) -> None:
        """Nothing to do: Argo saves each branch's outcome itself when the branch succeeds."""


def _entry(key: str, raw: str) -> tuple[str, Remembered] | None:
    """``(owner/name#N, Remembered)`` of one Argo cache entry; None when it is not ours."""
    try:
        entry = json.loads(raw)
        created = datetime.fromisoformat(str(entry["creationTimestamp"]).replace("Z", "+00:00"))
        parameters = entry["outputs"]["parameters"]
        value = next(p["value"] for p in parameters if p.get("name") == OUTCOME)
        outcome: Any = json.loads(value)
    except (ValueError, KeyError, TypeError, StopIteration):
        return None
    pr = outcome.get("pr") if isinstance(outcome, dict) else None
    if not isinstance(pr, str):
        return None
    actions = outcome.get("actions")
    action = next(iter(actions), None) if isinstance(actions, dict) and len(actions) == 1 else None
    # The key of the facts both decide and act saw; none for a fallback or for facts that
    # changed between the steps: such an outcome is never reused.
    facts = outcome.get("facts")
    return pr, Remembered(
        facts if isinstance(facts, str) else "", created.timestamp(), action=action
    )
