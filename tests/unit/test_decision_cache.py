"""The local decision cache: one bounded file per rule, written atomically, shared by runs."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ai_operator.jobs.clients.decision_cache import (
    DecisionCacheError,
    DecisionFile,
    cache_directory,
)
from ai_operator.jobs.policy.decision import decide
from ai_operator.jobs.policy.reuse import Remembered
from ai_operator.jobs.policy.verdict import Verdict
from ai_operator.jobs.rules.model import Action
from tests.factories import make_pr, make_rule

RULE = "ai-operator-system/staging-automerge"
NOW = float(int(time.time()))  # files get real modification times
DAY = 86400.0


def entry(number: int, at: float = NOW) -> dict[str, Remembered]:
    pr = make_pr(number=number)
    decision = decide(make_rule(), pr, Verdict(action=Action.MERGE, reason="green"), "fp")
    return {pr.display: Remembered(f"d-{number}", at, decision)}


def cache(tmp_path: Path, **options: float) -> DecisionFile:
    return DecisionFile(tmp_path / "decisions", max_age_seconds=DAY, clock=lambda: NOW, **options)


@pytest.mark.parametrize(
    ("xdg", "home", "expected"),
    [
        pytest.param("/xdg", "/home/ana", "/xdg/ai-operator/decisions", id="xdg-cache-home"),
        pytest.param(None, "/home/ana", "/home/ana/.cache/ai-operator/decisions", id="home"),
    ],
)
def test_decisions_live_in_the_users_cache_directory(xdg, home, expected):
    """$XDG_CACHE_HOME/ai-operator, else ~/.cache/ai-operator."""
    assert cache_directory(xdg, home) == Path(expected)


def test_what_is_kept_is_recalled(tmp_path):
    """A rule's decisions come back as they were kept; another rule sees none of them."""
    store = cache(tmp_path)
    store.keep(RULE, entry(7))
    assert store.recall(RULE) == entry(7)
    assert store.recall("ai-operator-system/other") == {}


def test_keeping_adds_to_what_is_there(tmp_path):
    """A later pass adds its decisions; one PR keeps only its newest decision."""
    store = cache(tmp_path)
    store.keep(RULE, entry(7, NOW - 60) | entry(8, NOW - 60))
    store.keep(RULE, entry(7, NOW))
    recalled = store.recall(RULE)
    assert sorted(recalled) == ["acme/web#7", "acme/web#8"]
    assert recalled["acme/web#7"].decided_at == NOW


def test_concurrent_runs_lose_no_decision(tmp_path):
    """Runs saving at the same moment each merge under a lock: every decision is kept."""
    stores = [cache(tmp_path) for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: stores[n].keep(RULE, entry(n + 1)), range(8)))
    assert sorted(cache(tmp_path).recall(RULE)) == [f"acme/web#{n}" for n in range(1, 9)]


def test_the_file_is_bounded_and_replaced_whole(tmp_path):
    """At most max_entries stay, expired ones go, and no temporary file is left behind."""
    store = cache(tmp_path, max_entries=2)
    store.keep(RULE, entry(1, NOW - 2 * DAY) | entry(2, NOW - 3) | entry(3, NOW - 2) | entry(4))
    assert sorted(store.recall(RULE)) == ["acme/web#3", "acme/web#4"]
    assert sorted(p.suffix for p in store.directory.iterdir()) == [".json", ".lock"]


def test_files_nobody_wrote_within_the_max_age_are_deleted(tmp_path):
    """A rule not run for longer than the max age leaves no file behind."""
    store = cache(tmp_path)
    store.keep("ns/gone", entry(1))
    os.utime(store.path("ns/gone"), (NOW - 2 * DAY, NOW - 2 * DAY))
    store.keep(RULE, entry(2))
    assert not store.path("ns/gone").exists() and store.path(RULE).exists()


def test_a_damaged_file_is_an_empty_memory(tmp_path):
    """Half a file or someone else's JSON: nothing is reused, and the next keep repairs it."""
    store = cache(tmp_path)
    store.directory.mkdir(parents=True)
    store.path(RULE).write_text('{"format": 1, "entr')
    assert store.recall(RULE) == {}
    store.keep(RULE, entry(7))
    assert json.loads(store.path(RULE).read_text())["entries"].keys() == {"acme/web#7"}


def test_an_unwritable_directory_is_an_error_naming_it(tmp_path):
    """A cache directory that cannot be created says where; recalling from it finds nothing."""
    (tmp_path / "file").write_text("")
    store = DecisionFile(tmp_path / "file" / "decisions", max_age_seconds=DAY)
    with pytest.raises(DecisionCacheError, match="decisions"):
        store.keep(RULE, entry(7))
    assert store.recall(RULE) == {}
