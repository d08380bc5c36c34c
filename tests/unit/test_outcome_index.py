"""The operator's own outcome index in the cluster: sharded ConfigMaps owned by the rule, bounded,
merged under concurrent writers through ``resourceVersion``; never Argo's memo.

Against the Kubernetes API of the Argo interpreter (on loopback).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from ai_operator.jobs.clients import outcome_index
from ai_operator.jobs.clients.kube import APIRequestError, KubernetesAPI
from ai_operator.jobs.clients.outcome_index import (
    DATA_KEY,
    OutcomeIndex,
    OutcomeIndexError,
    shard_of,
)
from ai_operator.jobs.policy.decision import decide
from ai_operator.jobs.policy.reuse import Remembered
from ai_operator.jobs.policy.verdict import Verdict
from ai_operator.jobs.rules.model import Action
from tests.argo_interpreter import MemoCache
from tests.factories import make_pr, make_rule

RULE = "ci/staging-automerge"
PREFIX = "ai-operator-outcomes-staging-automerge"
OWNER = {
    "apiVersion": "aioperator.io/v1alpha1",
    "kind": "PRReconciliationRule",
    "name": "staging-automerge",
    "uid": "0b5e-rule-uid",
    "blockOwnerDeletion": False,
}
NOW = 1_800_000_000.0
DAY = 86400.0


def record(number: int, at: float = NOW, **fields: Any) -> dict[str, Remembered]:
    pr = make_pr(number=number)
    decision = decide(make_rule(), pr, Verdict(action=Action.CLOSE, reason="stale"), "fp")
    found = Remembered(
        f"d-{number}", at, decision, applied=("close",), actor="ai-operator-bot", head=pr.head_oid
    )
    return {pr.display: replace(found, **fields)}


def index(api: KubernetesAPI, **options: Any) -> OutcomeIndex:
    options = {"max_age_seconds": DAY, "clock": lambda: NOW} | options
    return OutcomeIndex(api, "ci", PREFIX, **options)


@pytest.fixture
def cluster() -> Iterator[tuple[MemoCache, KubernetesAPI]]:
    memo = MemoCache()
    with memo.serve("ci") as url:
        yield memo, KubernetesAPI(url)


def test_a_record_comes_back_from_its_shard_labelled_for_its_owner(cluster) -> None:
    """The steps do not know the rule's uid: the label lets the controller own the shard."""
    memo, api = cluster
    [(pr, kept)] = record(7).items()

    index(api).keep(RULE, {pr: kept})

    assert index(api).recall(RULE) == {pr: kept}
    [name] = memo.objects
    assert name == f"{PREFIX}-{shard_of(pr)}"
    metadata = memo.objects[name]["metadata"]
    assert metadata["labels"] == {"aioperator.io/outcome-index": "true"}
    assert "ownerReferences" not in metadata
    stored = json.loads(memo.objects[name]["data"][DATA_KEY])["entries"][pr]
    assert (stored["applied"], stored["actor"], stored["head"]) == (
        ["close"],
        "ai-operator-bot",
        kept.head,
    )
    assert index(api).recall("ci/another-rule") == {}


def test_an_update_keeps_the_owner_the_controller_gave_the_shard(cluster) -> None:
    memo, api = cluster
    index(api).keep(RULE, record(7, NOW - 60))
    [name] = memo.objects
    memo.objects[name]["metadata"]["ownerReferences"] = [OWNER]

    index(api).keep(RULE, record(7, NOW))

    assert memo.objects[name]["metadata"]["ownerReferences"] == [OWNER]
    assert index(api).recall(RULE)["acme/web#7"].decided_at == NOW


def test_a_later_record_of_a_pr_replaces_the_earlier_one(cluster) -> None:
    _, api = cluster
    index(api).keep(RULE, record(7, NOW - 60) | record(8, NOW - 60))
    index(api).keep(RULE, record(7, NOW))

    recalled = index(api).recall(RULE)

    assert recalled["acme/web#7"].decided_at == NOW and set(recalled) == {
        "acme/web#7",
        "acme/web#8",
    }


class Racing(KubernetesAPI):
    """The API, where another writer saves its record just before this writer's first write."""

    def __init__(self, url: str, other: OutcomeIndex, records: dict[str, Remembered]) -> None:
        super().__init__(url)
        self.other, self.records, self.statuses = other, records, []

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        if method in ("POST", "PUT") and self.records:
            records, self.records = self.records, {}
            self.other.keep(RULE, records)
        status, document = super().request(method, path, body)
        self.statuses.append(status)
        return status, document


@pytest.mark.parametrize("existing", [False, True], ids=["both-create", "both-update"])
def test_concurrent_writers_merge_on_conflict(cluster, existing) -> None:
    """Two act pods write the same shard at once: 409, re-read, merge; both records stay."""
    memo, api = cluster
    same_shard = [n for n in range(8, 999) if shard_of(f"acme/web#{n}") == shard_of("acme/web#7")]
    before = record(same_shard[1], NOW - 5) if existing else {}
    index(api).keep(RULE, before)
    mine, theirs = record(7), record(same_shard[0], NOW - 1)
    racing = Racing(api.url, index(api), theirs)

    index(racing).keep(RULE, mine)

    assert 409 in racing.statuses and len(memo.objects) == 1
    assert index(api).recall(RULE) == before | theirs | mine


def test_a_shard_keeps_the_newest_records_within_its_bounds(cluster, monkeypatch) -> None:
    """At most max_entries per shard, fewer when the data would pass the size limit."""
    memo, api = cluster
    shard = shard_of("acme/web#1")
    numbers = [n for n in range(1, 2000) if shard_of(f"acme/web#{n}") == shard][:6]
    records: dict[str, Remembered] = {}
    for age, n in enumerate(numbers):
        records |= record(n, NOW - age)
    index(api, max_entries=4).keep(RULE, records)
    assert set(index(api).recall(RULE)) == {f"acme/web#{n}" for n in numbers[:4]}

    monkeypatch.setattr(outcome_index, "DATA_LIMIT", 3000)
    index(api).keep(RULE, records)
    data = memo.objects[f"{PREFIX}-{shard}"]["data"][DATA_KEY]
    assert len(data.encode()) <= 3000
    kept = index(api).recall(RULE)
    assert kept and set(kept) <= {f"acme/web#{n}" for n in numbers[: len(kept)]}


def test_a_fallback_and_an_expired_record_are_never_kept(cluster) -> None:
    _, api = cluster
    [(pr, found)] = record(7).items()
    assert found.decision is not None
    fallback = replace(found, decision=found.decision.model_copy(update={"fallback": True}))

    index(api).keep(RULE, {pr: fallback} | record(8, NOW - 2 * DAY))

    assert index(api).recall(RULE) == {}


def test_an_unreadable_shard_is_an_empty_memory_and_is_rewritten(cluster) -> None:
    memo, api = cluster
    [(pr, kept)] = record(7).items()
    name = f"{PREFIX}-{shard_of(pr)}"
    memo.objects[name] = {
        "metadata": {"name": name, "resourceVersion": "3"},
        "data": {DATA_KEY: "{not json"},
    }
    assert index(api).recall(RULE) == {}

    index(api).keep(RULE, {pr: kept})

    assert index(api).recall(RULE) == {pr: kept}


def test_argos_memo_is_not_read() -> None:
    """Argo's cache entries in its own ConfigMaps are not records of the operator's."""
    memo = MemoCache()
    memo.config_maps[f"{PREFIX}-0"] = {"d-0abc": json.dumps({"outputs": {"parameters": []}})}
    with memo.serve("ci") as url:
        assert index(KubernetesAPI(url)).recall(RULE) == {}


def test_without_an_api_keeping_fails_with_the_configmap_named() -> None:
    async def at_once(_seconds: float) -> None:
        """Asked again without waiting."""

    api = KubernetesAPI("http://127.0.0.1:9", sleep=at_once)  # nothing listens on port 9
    with pytest.raises(OutcomeIndexError, match=f"ConfigMap {PREFIX}-"):
        index(api).keep(RULE, record(7))
    with pytest.raises(APIRequestError):
        index(api).recall(RULE)


def test_one_pull_request_s_record_is_read_from_its_shard_alone(cluster) -> None:
    """A decide pod reads only the shard of its PR: one GET."""
    _, api = cluster
    index(api).keep(RULE, record(7) | record(8))
    calls: list[str] = []

    class Counting(KubernetesAPI):
        def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
            calls.append(method)
            return super().request(method, path, body)

    reader = index(Counting(api.url))
    assert reader.recall_one(RULE, "acme/web#7") == record(7)["acme/web#7"]
    assert reader.recall_one(RULE, "acme/web#99") is None
    assert calls == ["GET", "GET"]
