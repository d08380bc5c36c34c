"""The rule's Lease: one run acts at a time; the run's act pods share it; only its holder frees it.

Against the Lease API of the Argo interpreter's Kubernetes API (on loopback).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ai_operator.jobs.clients.kube import KubernetesAPI
from ai_operator.jobs.clients.rule_lease import LeaseHeld, RuleLease
from tests.argo_interpreter import MemoCache

NAME = "staging-automerge-act"
NOW = 1_800_000_000.0


@pytest.fixture
def cluster() -> Iterator[tuple[MemoCache, KubernetesAPI]]:
    memo = MemoCache()
    with memo.serve("ci") as url:
        yield memo, KubernetesAPI(url)


def lease(api: KubernetesAPI, run: str, at: float = NOW) -> RuleLease:
    return RuleLease(api, "ci", NAME, run, clock=lambda: at)


def holder(memo: MemoCache) -> str:
    return str(memo.leases[NAME]["spec"]["holderIdentity"])


def test_every_act_pod_of_one_run_takes_and_renews_the_same_lease(cluster) -> None:
    memo, api = cluster
    lease(api, "run-a").acquire()
    lease(api, "run-a", NOW + 60).acquire()  # a sibling act pod of the same run

    assert holder(memo) == "run-a"
    assert memo.leases[NAME]["spec"]["renewTime"].startswith("2027-01-15T08:01:00")


def test_another_run_waits_while_the_lease_is_held(cluster) -> None:
    memo, api = cluster
    lease(api, "run-a").acquire()

    with pytest.raises(LeaseHeld, match=r"another run \(run-a\) is acting") as raised:
        lease(api, "run-b", NOW + 119).acquire()

    assert raised.value.retryable and holder(memo) == "run-a"


def test_an_expired_lease_is_taken_over(cluster) -> None:
    memo, api = cluster
    lease(api, "crashed-run").acquire()

    lease(api, "run-b", NOW + 121).acquire()

    assert holder(memo) == "run-b"


@pytest.mark.parametrize(
    ("releasing", "released", "left_with"),
    [
        pytest.param("run-a", True, "", id="the-holder-frees-it"),
        pytest.param("run-b", False, "run-a", id="another-run-leaves-it"),
    ],
)
def test_only_the_holding_run_releases_the_lease(cluster, releasing, released, left_with) -> None:
    memo, api = cluster
    lease(api, "run-a").acquire()

    assert lease(api, releasing, NOW + 5).release() is released
    assert holder(memo) == left_with


def test_a_released_lease_is_taken_at_once_by_the_next_run(cluster) -> None:
    memo, api = cluster
    lease(api, "run-a").acquire()
    lease(api, "run-a").release()

    lease(api, "run-b", NOW + 1).acquire()

    assert holder(memo) == "run-b"


def test_releasing_a_lease_nobody_took_does_nothing(cluster) -> None:
    memo, api = cluster

    assert lease(api, "run-a").release() is False
    assert memo.leases == {}
