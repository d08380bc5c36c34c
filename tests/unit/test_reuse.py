"""Reusing decisions and sharing a capped pass fairly: which PR is asked about, which waits."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ai_operator.jobs.policy.decision import decide
from ai_operator.jobs.policy.outcome import reacted
from ai_operator.jobs.policy.reuse import (
    Candidate,
    Remembered,
    decision_key,
    declined,
    memory_document,
    merged,
    read_memory_document,
    remember,
    rotation,
    triage,
)
from ai_operator.jobs.policy.snapshot import Check, CiStatus, Mergeable, Review
from ai_operator.jobs.policy.verdict import Verdict
from ai_operator.jobs.rules.model import Action
from tests.factories import make_pr, make_rule

RULE = make_rule()
OWN = frozenset({"needs-human-approval"})
MODEL = "anthropic/claude-sonnet-5"
NOW = 1_800_000_000.0
DAY = 86400.0


def key(pr=None, *, spec_hash: str = "spec", model: str = MODEL) -> str:
    return decision_key(spec_hash, model, pr or make_pr())


def a_decision(**pr):
    return decide(RULE, make_pr(**pr), Verdict(action=Action.MERGE, reason="green"), "fp")


# --- the key: what a decision depends on -------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"head_oid": "b" * 40}, id="new-commit"),
        pytest.param({"ci_status": CiStatus.FAILURE}, id="checks-state"),
        pytest.param(
            {"checks": (Check(name="ci", status="COMPLETED", conclusion="FAILURE"),)},
            id="one-check",
        ),
        pytest.param({"mergeable": Mergeable.CONFLICTING}, id="mergeability"),
        pytest.param({"merge_state_status": "BLOCKED"}, id="merge-state"),
        pytest.param({"reviews": (Review(author="ana", state="CHANGES_REQUESTED"),)}, id="review"),
        pytest.param({"review_decision": "APPROVED"}, id="review-decision"),
        pytest.param({"labels": ("auto-merge", "staging", "urgent")}, id="a-label"),
        pytest.param({"base_branch": "release"}, id="base"),
        pytest.param({"title": "Roll forward"}, id="title"),
        pytest.param({"body": "Now with a migration."}, id="body"),
        pytest.param({"is_draft": True}, id="draft"),
    ],
)
def test_a_changed_fact_changes_the_key(change):
    """Anything the decision read makes a new key: the model is asked again."""
    assert key(make_pr(**change)) != key()


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            {
                "labels": ("auto-merge", "staging", "needs-human-approval"),
                "labels_added_by_operator": OWN,
            },
            id="operator-label",
        ),
        pytest.param(
            {
                "labels": ("auto-merge", "staging", "Needs-Human-Approval"),
                "labels_added_by_operator": OWN,
            },
            id="operator-label-other-case",
        ),
        pytest.param({"comment_markers": frozenset({"rule=x action=escalate"})}, id="own-comment"),
        pytest.param({"updated_at": datetime(2026, 11, 30, tzinfo=UTC)}, id="updated-at"),
        pytest.param({"id": "PR_other"}, id="node-id"),
    ],
)
def test_the_rules_own_traces_keep_the_key(change):
    """The operator's own escalation (label, comment) is no change of facts: its decision stands.

    A label counts as the operator's when its token added it (the timeline), in any case.
    """
    assert key(make_pr(**change)) == key()


def test_a_person_adding_the_rules_escalation_label_changes_the_key():
    """The rule's own label, added by a person, is a change: the decision is not reused."""
    by_person = make_pr(labels=("auto-merge", "staging", "needs-human-approval"))
    assert key(by_person) != key()


def test_another_spec_or_model_changes_the_key():
    """A new spec (new instruction, actions, ...) or another model decides anew."""
    assert key(spec_hash="other") != key()
    assert key(model="openai/gpt-4.1-mini") != key()


def test_keys_fit_argos_memoization_key_pattern():
    """The same key names the pipeline's memo entry, so it must be a valid Argo memo key."""
    assert key().startswith("d-") and key()[2:].isalnum() and len(key()) == 26


# --- triage: reuse, ask, defer -----------------------------------------------------------------


def candidate(number=7, *, decided_at=None, same_key=True, updated_day=2):
    pr = make_pr(number=number, updated_at=datetime(2026, 11, updated_day, tzinfo=UTC))
    current = key(pr)
    found = None
    if decided_at is not None:
        found = Remembered(current if same_key else "d-old", decided_at, a_decision(number=number))
    return Candidate(pr, current, found)


@pytest.mark.parametrize(
    ("remembered", "reused"),
    [
        pytest.param({"decided_at": NOW - 60}, True, id="unchanged-and-recent"),
        pytest.param({"decided_at": NOW - DAY}, True, id="exactly-the-max-age"),
        pytest.param({"decided_at": NOW - DAY - 1}, False, id="older-than-the-max-age"),
        pytest.param({"decided_at": NOW - 60, "same_key": False}, False, id="facts-changed"),
        pytest.param({"decided_at": NOW + 3600}, False, id="from-the-future"),
        pytest.param({}, False, id="never-decided"),
    ],
)
def test_a_decision_is_reused_only_while_it_stands(remembered, reused):
    """Same key and not older than the max age: reused; anything else is asked again."""
    split = triage([candidate(**remembered)], now=NOW, max_age=DAY, cap=10)
    assert (len(split.reuse), len(split.ask)) == ((1, 0) if reused else (0, 1))


def test_reused_decisions_do_not_count_against_the_cap():
    """The cap bounds model calls: 5 reused and 3 changed PRs with a cap of 3 defer nobody."""
    unchanged = [candidate(n, decided_at=NOW - 60) for n in range(1, 6)]
    changed = [candidate(n, decided_at=NOW - 60, same_key=False) for n in range(6, 9)]
    split = triage(unchanged + changed, now=NOW, max_age=DAY, cap=3)
    assert (len(split.reuse), len(split.ask), len(split.deferred)) == (5, 3, 0)
    assert split.matched == 8


def test_least_recently_decided_first_then_oldest_update():
    """Never decided comes first, then the longest ago; ties go to the oldest update."""
    split = triage(
        [
            candidate(1, decided_at=NOW - 10, same_key=False),
            candidate(2, decided_at=NOW - 500, same_key=False),
            candidate(3, updated_day=20),
            candidate(4, updated_day=5),
        ],
        now=NOW,
        max_age=DAY,
        cap=3,
    )
    assert [c.pr.number for c in split.ask] == [4, 3, 2]
    assert [c.pr.number for c in split.deferred] == [1]
    assert split.deferred[0].last_decided == NOW - 10 and candidate(9).last_decided == -math.inf


def test_150_prs_with_a_cap_of_100_are_all_decided_within_two_passes():
    """Pass 1 asks about 100 and defers 50; pass 2 reuses those 100 and asks about the 50."""
    prs = [make_pr(number=n, updated_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=n))
           for n in range(1, 151)]  # fmt: skip
    memory: dict[str, Remembered] = {}
    decided: set[int] = set()
    for now in (NOW, NOW + 600):  # two passes, ten minutes apart
        split = triage(
            [Candidate(pr, key(pr), memory.get(pr.display)) for pr in prs],
            now=now,
            max_age=DAY,
            cap=100,
        )
        assert len(split.ask) <= 100
        decided |= {c.pr.number for c in split.ask}
        keys = {c.pr.display: c.key for c in split.ask}
        memory |= remember([a_decision(number=c.pr.number) for c in split.ask], keys, now)
    assert decided == set(range(1, 151))
    assert (len(split.reuse), len(split.ask), len(split.deferred)) == (100, 50, 0)


# --- the stored shape ----------------------------------------------------------------------------


def test_the_memory_document_round_trips():
    """What is written is read back as it was: the outcome record, with what was applied."""
    decision = a_decision()
    entries = {
        "acme/web#7": Remembered(
            key(),
            NOW - 5,
            decision,
            applied=("comment", "label needs-human-approval", "merge (squash)"),
            github_ids={"comment": ("IC_1",), "label needs-human-approval": ("LA_9",)},
            actor="ai-operator-bot",
            head=decision.head_oid,
        )
    }
    document = memory_document(entries, rule="ns/r", now=NOW, max_age=DAY, max_entries=10)
    assert read_memory_document(document, rule="ns/r") == entries
    assert document["entries"]["acme/web#7"]["githubIds"] == {
        "comment": ["IC_1"],
        "label needs-human-approval": ["LA_9"],
    }


def test_a_fallback_is_never_remembered_nor_reused():
    """A fallback (no usable answer) is left out of the memory, and never reused if found."""
    fallback = a_decision().model_copy(update={"fallback": True})
    entries = {"acme/web#7": Remembered(key(), NOW - 5, fallback)}
    document = memory_document(entries, rule="ns/r", now=NOW, max_age=DAY, max_entries=10)
    assert read_memory_document(document, rule="ns/r") == {}
    assert remember([fallback], {"acme/web#7": key()}, NOW) == {}
    found = Candidate(make_pr(), key(), Remembered(key(), NOW - 5, fallback))
    assert triage([found], now=NOW, max_age=DAY, cap=10).declined == {
        "acme/web#7": "a fallback is never reused"
    }


@pytest.mark.parametrize(
    ("remembered", "reason"),
    [
        pytest.param(Remembered("d-other", NOW - 5), "the facts, the rule or the model changed"),
        pytest.param(Remembered(key(), NOW - 2 * DAY), "decided too long ago"),
        pytest.param(
            Remembered(key(), NOW + 60), "decided in the future (a skewed clock): not trusted"
        ),
    ],
)
def test_reuse_declines_with_a_reason(remembered, reason):
    """Reuse is one pure function that says why it declines."""
    assert declined(Candidate(make_pr(), key(), remembered), now=NOW, max_age=DAY) == reason


def test_without_memory_the_pull_requests_beyond_the_cap_take_turns():
    """No memory: each pass starts further on, so 150 PRs with a cap of 100 all get asked."""
    prs = [Candidate(make_pr(number=n), key(make_pr(number=n))) for n in range(1, 151)]
    asked: set[int] = set()
    for scheduled in range(2):
        now = NOW + 60 * scheduled
        split = triage(prs, now=now, max_age=-1, cap=100, rotate=rotation(now, 60, 100))
        asked |= {c.pr.number for c in split.ask}
    assert asked == set(range(1, 151))


def test_the_memory_document_is_bounded():
    """Expired entries are dropped and at most max_entries stay, the most recently decided."""
    entries = {
        f"acme/web#{n}": Remembered(key(make_pr(number=n)), NOW - n, a_decision(number=n))
        for n in range(1, 8)
    }
    entries["acme/web#99"] = Remembered("d-x", NOW - 2 * DAY, a_decision(number=99))
    document = memory_document(entries, rule="ns/r", now=NOW, max_age=DAY, max_entries=3)
    assert sorted(read_memory_document(document, rule="ns/r")) == [
        "acme/web#1",
        "acme/web#2",
        "acme/web#3",
    ]


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(None, id="nothing"),
        pytest.param({"format": 99, "rule": "ns/r", "entries": {}}, id="another-format"),
        pytest.param({"format": 1, "rule": "ns/other", "entries": {}}, id="another-rule"),
        pytest.param(
            {"format": 1, "rule": "ns/r", "entries": {"acme/web#7": {"key": 3}}}, id="bad-entry"
        ),
        pytest.param(
            {
                "format": 1,
                "rule": "ns/r",
                "entries": {"acme/web#8": {"key": "d-1", "decidedAt": NOW, "decision": {}}},
            },
            id="not-a-decision",
        ),
    ],
)
def test_an_unreadable_memory_is_an_empty_one(document):
    """Whatever cannot be read is forgotten: the model is asked, which is only slower."""
    assert read_memory_document(document, rule="ns/r") == {}


def test_merging_keeps_the_newest_decision_of_each_pr():
    """Two runs saving at once: per PR, the later decision wins."""
    older = {"acme/web#7": Remembered("d-1", NOW - 100, a_decision())}
    newer = {"acme/web#7": Remembered("d-2", NOW - 10, a_decision())}
    assert merged(newer, older)["acme/web#7"].key == "d-2"
    assert merged(older, newer)["acme/web#7"].key == "d-2"


# --- a decision whose writes waited for write budget -------------------------------------------


def waited(pr=None, **fields):
    """A record of a decision about ``pr`` whose writes were deferred, under ``pr``'s key."""
    pr = pr or make_pr()
    found = Remembered(key(pr), NOW - 600, a_decision(), head=pr.head_oid, deferred=True)
    return replace(found, **fields)


@pytest.mark.parametrize(
    ("now_pr", "model", "remembered", "reason"),
    [
        pytest.param(make_pr(), MODEL, waited(), None, id="unchanged-is-reused"),
        pytest.param(
            make_pr(head_oid="b" * 40),
            MODEL,
            waited(),
            "the facts, the rule or the model changed",
            id="new-head-is-asked",
        ),
        pytest.param(
            make_pr(ci_status=CiStatus.FAILURE),
            MODEL,
            waited(),
            "the facts, the rule or the model changed",
            id="new-facts-are-asked",
        ),
        pytest.param(
            make_pr(),
            "openai/gpt-4.1-mini",
            waited(),
            "the facts, the rule or the model changed",
            id="another-model-is-asked",
        ),
        pytest.param(
            make_pr(),
            MODEL,
            waited(decision=a_decision().model_copy(update={"fallback": True})),
            "a fallback is never reused",
            id="a-fallback-never",
        ),
        pytest.param(
            make_pr(),
            MODEL,
            waited(shadow=True),
            "a shadow decision is never acted on",
            id="a-shadow-decision-never",
        ),
        pytest.param(
            make_pr(), MODEL, waited(decided_at=NOW - 2 * DAY), "decided too long ago", id="old"
        ),
        pytest.param(
            make_pr(),
            MODEL,
            waited(decision=None),
            "its writes were deferred and its decision is not known: decided again",
            id="no-decision-known",
        ),
    ],
)
def test_a_decision_whose_writes_waited_is_reused_while_it_stands(
    now_pr, model, remembered, reason
):
    """Waiting for write budget is no reason to ask again: the same checks as any reuse."""
    candidate = Candidate(now_pr, key(now_pr, model=model), remembered)
    assert declined(candidate, now=NOW, max_age=DAY) == reason
    split = triage([candidate], now=NOW, max_age=DAY, cap=10)
    assert (len(split.reuse), len(split.ask)) == ((1, 0) if reason is None else (0, 1))


def test_what_waited_is_reused_first_and_costs_no_model_call():
    """Reused decisions go in the pass's order: what waited first; none counts against the cap."""
    prs = [make_pr(number=n) for n in (1, 2, 3)]
    candidates = [
        Candidate(prs[0], key(prs[0]), Remembered(key(prs[0]), NOW - 60, a_decision(number=1))),
        Candidate(prs[1], key(prs[1]), waited(prs[1], decision=a_decision(number=2))),
        Candidate(prs[2], key(prs[2])),
    ]
    split = triage(candidates, now=NOW, max_age=DAY, cap=0)
    assert [c.pr.number for c in split.reuse] == [2, 1]
    assert [c.pr.number for c in split.deferred] == [3]


def test_a_record_acted_on_again_replaces_the_one_at_the_same_decision_time():
    """Recorded again at its decision time once written: the later record wins the tie."""
    before = {"acme/web#7": waited()}
    after = {"acme/web#7": waited(deferred=False, applied=("comment",))}
    assert merged(before, after)["acme/web#7"].deferred is False


@pytest.mark.parametrize(
    ("remembered", "this_act", "expected"),
    [
        pytest.param(
            waited(),
            {"applied": ("label needs-human-approval", "comment")},
            {"deferred": False, "applied": ("label needs-human-approval", "comment")},
            id="written-now-records-as-acted",
        ),
        pytest.param(
            waited(), {"deferred": True}, {"deferred": True, "applied": ()}, id="waits-again"
        ),
        pytest.param(waited(), {"not_acted": True}, None, id="a-failed-act-keeps-the-record"),
        pytest.param(waited(deferred=False), {}, None, id="a-decision-that-had-not-waited"),
    ],
)
def test_a_reused_decision_that_waited_is_recorded_again_at_its_decision_time(
    remembered, this_act, expected
):
    """The model was asked then, not now: the record keeps its key and its time."""
    pr = make_pr()
    name = pr.display
    records = reacted(
        [Candidate(pr, key(pr), remembered)],
        {name: this_act.get("applied", ())},
        actor="ai-operator-bot",
        deferred={name} if this_act.get("deferred") else (),
        not_acted={name} if this_act.get("not_acted") else (),
    )
    if expected is None:
        assert records == {}
        return
    again = records[name]
    assert (again.deferred, again.applied) == (expected["deferred"], expected["applied"])
    assert (again.key, again.decided_at, again.decision) == (
        remembered.key,
        remembered.decided_at,
        remembered.decision,
    )
