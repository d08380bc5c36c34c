"""The operator's own index of outcome records in the cluster: sharded ConfigMaps owned by the rule.

One record per pull request (the newest: its rule, decision, head, the operations GitHub
confirmed, the token's login, when; :mod:`jobs.policy.outcome`), in the same document as ``run``'s
local file (:func:`jobs.policy.reuse.memory_document`), split over 16 ConfigMaps
``<prefix>-0`` ... ``<prefix>-f`` by a digest of the pull request's name, so that one pull request
always lives in one shard and no shard nears Kubernetes' 1 MiB limit: each keeps at most
``max_entries`` records younger than ``max_age``, fewer when its data would pass
:data:`DATA_LIMIT`. It is never Argo's memo: nothing here parses Argo's cache entries.

- Owned by the rule: the steps do not know the rule's uid, so the controller adds the
  ``ownerReference`` to its ``PRReconciliationRule`` at its next full list (it finds the index by
  its label). An update keeps the references the ConfigMap has, so Kubernetes deletes it with the
  rule.
- Concurrent writers (two act pods, two runs) never lose each other's records: a write carries the
  ConfigMap's ``resourceVersion``; on 409 Conflict the shard is read again, merged (per pull
  request, the newest wins: :func:`jobs.policy.reuse.merged`) and written again.
- Losing it loses only savings: a shard that is missing or unreadable is an empty memory, and the
  model is asked again; what people did is read from GitHub's timeline on every pass.

Requests: ``get``, ``create`` and ``update`` on ``configmaps`` in the rule's namespace.
Errors: :class:`OutcomeIndexError` from :meth:`OutcomeIndex.keep` (the API unreachable, refusing,
or still conflicting after :data:`ATTEMPTS` tries); :meth:`OutcomeIndex.recall` raises
:class:`~jobs.clients.kube.APIRequestError` when the API cannot be reached or refuses.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from ai_operator.jobs.clients.decision_cache import DecisionCacheError
from ai_operator.jobs.clients.kube import APIRequestError, KubernetesAPI
from ai_operator.jobs.policy.reuse import (
    MEMO_SHARDS,
    Remembered,
    memory_document,
    merged,
    read_memory_document,
)

DATA_KEY = "outcomes.json"
DATA_LIMIT = 900 * 1024
"""Bytes of a shard's data at most: under Kubernetes' 1 MiB for the whole object."""
MAX_ENTRIES = 500
"""Records per shard at most (8,000 per rule over 16 shards)."""
ATTEMPTS = 5
"""Tries of one shard's write under conflicting writers before giving up (savings only)."""
INDEX_LABEL = ("aioperator.io/outcome-index", "true")


class OutcomeIndexError(DecisionCacheError):
    """The index could not be written; the message names the ConfigMap (never a credential).

    A :class:`~jobs.clients.decision_cache.DecisionCacheError`, as every memory's ``keep``
    raises (:class:`~jobs.reconcile.ports.DecisionMemory`).
    """


def shard_of(pr: str) -> str:
    """The shard of a pull request (``owner/name#N``): a digest's first hex digit, stable."""
    return hashlib.sha256(pr.encode()).hexdigest()[0]


class OutcomeIndex:
    """A :class:`~jobs.reconcile.ports.DecisionMemory` over the rule's outcome ConfigMaps."""

    def __init__(
        self,
        api: KubernetesAPI,
        namespace: str,
        prefix: str,
        *,
        max_age_seconds: float,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._api = api
        self._namespace = namespace
        self._prefix = prefix
        self.max_age_seconds = max_age_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._owners: dict[str, list[Any]] = {}
        """The owner references each shard had when last read: an update keeps them."""

    def config_maps(self) -> list[str]:
        """The ConfigMaps the index is sharded over."""
        return [self.config_map(shard) for shard in MEMO_SHARDS]

    def config_map(self, shard: str) -> str:
        """The ConfigMap of one shard."""
        return f"{self._prefix}-{shard}"

    def recall(self, rule: str) -> dict[str, Remembered]:
        """Every record of ``rule`` (raises APIRequestError when the API cannot be reached)."""
        found: dict[str, Remembered] = {}
        for shard in MEMO_SHARDS:
            _, records = self._read(rule, shard)
            found.update(records)
        return found

    def recall_one(self, rule: str, pr: str) -> Remembered | None:
        """The record of one pull request (``owner/name#N``), reading only its shard.

        Raises APIRequestError when the API cannot be reached.
        """
        _, records = self._read(rule, shard_of(pr))
        return records.get(pr)

    def keep(self, rule: str, entries: Mapping[str, Remembered]) -> None:
        """Add ``entries`` to the index, merged with what other writers put there meanwhile."""
        by_shard: dict[str, dict[str, Remembered]] = {}
        for pr, record in entries.items():
            by_shard.setdefault(shard_of(pr), {})[pr] = record
        for shard, records in sorted(by_shard.items()):
            self._keep_shard(rule, shard, records)

    def _keep_shard(self, rule: str, shard: str, records: Mapping[str, Remembered]) -> None:
        name = self.config_map(shard)
        try:
            for _ in range(ATTEMPTS):
                version, stored = self._read(rule, shard)
                document = self._new(
                    name,
                    {DATA_KEY: self._document(rule, merged(stored, records))},
                    self._owners.get(shard, []),
                )
                if version is None:
                    status, _ = self._api.request("POST", self._collection(), document)
                else:
                    document["metadata"]["resourceVersion"] = version
                    status, _ = self._api.request("PUT", self._path(name), document)
                if status in (200, 201):
                    return
                if status != 409:
                    raise OutcomeIndexError(f"ConfigMap {name}: the API answered HTTP {status}")
        except APIRequestError as exc:
            raise OutcomeIndexError(f"ConfigMap {name} not written: {exc}") from exc
        raise OutcomeIndexError(f"ConfigMap {name} kept changing: {ATTEMPTS} writes conflicted")

    def _read(self, rule: str, shard: str) -> tuple[str | None, dict[str, Remembered]]:
        """A shard's ``resourceVersion`` (None when it does not exist) and its records."""
        status, document = self._api.request("GET", self._path(self.config_map(shard)))
        if status == 404:
            self._owners.pop(shard, None)
            return None, {}
        metadata = document.get("metadata") or {}
        owners = metadata.get("ownerReferences")
        self._owners[shard] = owners if isinstance(owners, list) else []
        version = str(metadata.get("resourceVersion") or "")
        text = (document.get("data") or {}).get(DATA_KEY)
        try:
            records = read_memory_document(json.loads(text), rule=rule) if text else {}
        except ValueError:
            records = {}  # unreadable: an empty memory, rewritten whole
        return version, records

    def _document(self, rule: str, records: Mapping[str, Remembered]) -> str:
        """The shard's data: the newest records that fit both ``max_entries`` and the limit."""
        keep = self.max_entries
        while True:
            document = memory_document(
                records,
                rule=rule,
                now=self._clock(),
                max_age=self.max_age_seconds,
                max_entries=keep,
            )
            text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
            if len(text.encode()) + len(DATA_KEY) <= DATA_LIMIT or keep == 0:
                return text
            keep = min(keep, len(document["entries"])) * 9 // 10

    def _new(self, name: str, data: dict[str, str], owners: list[Any]) -> dict[str, Any]:
        label, value = INDEX_LABEL
        metadata: dict[str, Any] = {"name": name, "labels": {label: value}}
        if owners:
            metadata["ownerReferences"] = owners
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}

    def _collection(self) -> str:
        return f"/api/v1/namespaces/{quote(self._namespace)}/configmaps"

    def _path(self, name: str) -> str:
        return f"{self._collection()}/{quote(name)}"
