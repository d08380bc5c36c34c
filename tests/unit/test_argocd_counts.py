"""Argo CD errors reach the metrics: `run`'s report and the pipeline's fetch -> tally -> report."""

from __future__ import annotations

import json

from ai_operator.jobs.clients.metrics import pass_metric_families
from ai_operator.jobs.reconcile.report import counts, summary_from_counts
from ai_operator.jobs.reconcile.results import PassReport
from ai_operator.jobs.reconcile.steps import tally
from ai_operator.jobs.reconcile.wire import FetchCounts

RULE = "ai-operator-system/staging-automerge"


def argocd_errors(summary_counts: object) -> dict[str, float]:
    summary = summary_from_counts(
        RULE, summary_counts, duration_seconds=1.0, succeeded=True, finished_at=1e9
    )  # type: ignore[arg-type]
    [family] = [f for f in pass_metric_families(summary) if f.name == "ai_operator_argocd_errors"]
    return {s.labels["kind"]: s.value for s in family.samples if s.value}


def test_a_passs_argo_cd_errors_are_counted_by_kind() -> None:
    """`run`: the report's errors by kind become ai_operator_argocd_errors_total{kind}."""
    report = PassReport(rule=RULE, argocd_errors={"auth": 2, "missing": 1})
    assert argocd_errors(counts(report)) == {"auth": 2.0, "missing": 1.0}


def test_fetchs_argo_cd_errors_reach_the_runs_metrics() -> None:
    """The pipeline: fetch's counts carry them (only when there are any) to the tally."""
    fetched = FetchCounts(matched=2, to_decide=2, argocd_errors={"unreachable": 1})
    assert json.loads(json.dumps(fetched.wire()))["argocdErrors"] == {"unreachable": 1}
    assert "argocdErrors" not in FetchCounts(matched=2).wire()
    run = tally("[]", json.dumps(fetched.wire()), "wf-1")
    assert argocd_errors(run) == {"unreachable": 1.0}


def test_an_unknown_kind_from_another_version_is_dropped_not_fatal() -> None:
    """Counts cross process boundaries: a kind this version does not know is left out."""
    report = PassReport(rule=RULE, argocd_errors={"teapot": 1})
    assert argocd_errors(counts(report)) == {}
