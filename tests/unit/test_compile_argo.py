"""Specification of a rule compiled into an Argo CronWorkflow (ai_operator.pipelines.argo via compile_rule)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from ai_operator.jobs.rules.encoding import RULE_DIGEST_ENV, RULE_ENV, RULE_FILE_ENV, read_rule_file
from ai_operator.jobs.rules.files import load_rules
from ai_operator.jobs.rules.model import PRReconciliationRule
from ai_operator.pipelines.argo import (
    TALLY_COMMAND,
    act_command,
    decide_command,
    fetch_command,
    report_command,
)
from ai_operator.pipelines.argo_checks import check_cron_workflow
from ai_operator.pipelines.compile import compile_rule, compile_rules, to_yaml
from ai_operator.pipelines.options import (
    RULE_DIGEST_ANNOTATION,
    CompileError,
    CompileOptions,
    bounded_name,
)
from tests.argo_schema import ROOT, schema_errors, workflow_errors
from tests.factories import inlined, make_rule

EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
COMPILED = ROOT / "examples" / "compiled"
OPTIONS = CompileOptions()
LONG_NAME = "reconcile-every-dependency-update-of-the-platform-team-" + "x" * 60


EXAMPLE_RULES = [loaded.rule for loaded in load_rules(EXAMPLES)]

EDGE_CASES = [
    pytest.param(make_rule(), id="ordinary"),
    pytest.param(make_rule(LONG_NAME), id="long-name"),
    pytest.param(make_rule("team.rules.staging"), id="dotted-name"),
    pytest.param(make_rule(reconciliationInterval=20), id="interval-20s"),
    pytest.param(make_rule(reconciliationInterval=7200), id="interval-2h"),
    pytest.param(
        make_rule(schedule="30 8 * * 1-5", timezone="Europe/Paris"), id="cron-with-timezone"
    ),
    pytest.param(make_rule(suspend=True), id="suspended"),
    pytest.param(make_rule(dryRun=True), id="dry-run"),
    pytest.param(
        make_rule(repositories=[f"acme/service-{i}" for i in range(60)], maxPullRequests=1000),
        id="many-repositories",
    ),
]
EXAMPLE_CASES = [pytest.param(rule, id=rule.metadata.name) for rule in EXAMPLE_RULES]
ALL_RULES = EXAMPLE_CASES + EDGE_CASES


def compiled(rule: PRReconciliationRule, options: CompileOptions = OPTIONS) -> dict[str, Any]:
    return inlined(compile_rule(rule, "argo", options))


def workflow_spec(document: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = document["spec"]["workflowSpec"]
    return spec


def template(document: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in workflow_spec(document)["templates"] if t["name"] == name)


def task(document: dict[str, Any], name: str, dag: str = "reconcile") -> dict[str, Any]:
    return next(t for t in template(document, dag)["dag"]["tasks"] if t["name"] == name)


def containers(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        t["name"]: t["container"] for t in workflow_spec(document)["templates"] if "container" in t
    }


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {var["name"]: var for var in container["env"]}


# --- validity ---------------------------------------------------------------------------------


def test_the_examples_are_present() -> None:
    """The examples this specification compiles exist (an empty glob would prove nothing)."""
    assert len(EXAMPLE_RULES) >= 3


@pytest.mark.parametrize("rule", ALL_RULES)
def test_compiles_to_a_cron_workflow_the_strict_schema_accepts(rule: PRReconciliationRule) -> None:
    """Every rule becomes a CronWorkflow valid under Argo v4.1.2's schema with no unknown field."""
    assert schema_errors(compiled(rule)) == []


@pytest.mark.parametrize("rule", ALL_RULES)
def test_compiles_to_a_cron_workflow_argo_checks_find_clean(rule: PRReconciliationRule) -> None:
    """Every rule passes Argo's own checks (names, cron, references, memoization)."""
    assert check_cron_workflow(compiled(rule)) == []


def test_the_strict_schema_refuses_a_misspelt_field() -> None:
    """Strictness works: a typo the API server would silently drop is an error here."""
    document = compiled(make_rule())
    template(document, "fetch")["container"]["imagee"] = "busybox"
    assert any("imagee" in error for error in schema_errors(document))


def test_the_strict_schema_refuses_argo_3s_single_schedule() -> None:
    """``spec.schedule`` was removed in Argo 4: only ``spec.schedules`` is accepted."""
    document = compiled(make_rule())
    document["spec"]["schedule"] = "* * * * *"
    assert any("schedule" in error for error in schema_errors(document))


@pytest.mark.parametrize("rule", ALL_RULES)
def test_compiling_twice_gives_the_same_bytes(rule: PRReconciliationRule) -> None:
    """Compilation is deterministic: same rule and options, same YAML."""
    first = to_yaml([compile_rule(rule, "argo", OPTIONS)])
    assert to_yaml([compile_rule(rule, "argo", OPTIONS)]) == first


def test_to_yaml_writes_one_document_per_manifest_with_its_notes() -> None:
    """Multi-document YAML, each rule's ConfigMap, WorkflowTemplate, then its CronWorkflow, each
    headed by a comment."""
    manifests = [
        compile_rule(r, "argo", OPTIONS)
        for r in (make_rule("a"), make_rule("b", reconciliationInterval=20))
    ]
    text = to_yaml(manifests)
    documents = list(yaml.safe_load_all(text))
    assert [(d["kind"], d["metadata"]["name"]) for d in documents] == [
        ("ConfigMap", "ai-operator-rule-a"),
        ("WorkflowTemplate", "a"),
        ("CronWorkflow", "a"),
        ("ConfigMap", "ai-operator-rule-b"),
        ("WorkflowTemplate", "b"),
        ("CronWorkflow", "b"),
    ]
    assert "# Note: reconciliationInterval 20s is shorter than a minute" in text
    assert "&id" not in text and "*id" not in text  # no YAML anchors


# --- the rule and the secrets -----------------------------------------------------------------


@pytest.mark.parametrize("rule", ALL_RULES)
def test_the_rule_appears_once_as_written_and_never_where_argo_substitutes(
    rule: PRReconciliationRule,
) -> None:
    """Each line of the instruction is in the output once (the ConfigMap), none in the workflow."""
    manifest = compile_rule(rule, "argo", OPTIONS)
    text = to_yaml([manifest])
    workflow = json.dumps(manifest.document)
    for line in rule.spec.instruction.splitlines():
        if len(line.strip()) > 12:
            assert text.count(line.strip()) == 1
            assert line.strip() not in workflow
    assert f'"{RULE_ENV}"' not in workflow


@pytest.mark.parametrize("rule", ALL_RULES)
def test_every_step_reads_the_rules_config_map_checked_against_its_pods_digest(
    rule: PRReconciliationRule, tmp_path: Path
) -> None:
    """Each step mounts the rule's ConfigMap; the file, checked against the digest, is the rule."""
    manifest = compile_rule(rule, "argo", OPTIONS)
    assert manifest.config_map is not None
    spec = workflow_spec(inlined(manifest))
    digest = spec["podMetadata"]["annotations"][RULE_DIGEST_ANNOTATION]
    assert {"name": "rule", "configMap": {"name": manifest.config_map["metadata"]["name"],
                                          "optional": True}} in spec["volumes"]  # fmt: skip
    for container in containers(inlined(manifest)).values():
        env = env_of(container)
        assert env[RULE_FILE_ENV]["value"] == "/etc/ai-operator/rule/rule.yaml"
        assert env[RULE_DIGEST_ENV]["valueFrom"] == {
            "fieldRef": {"fieldPath": f"metadata.annotations['{RULE_DIGEST_ANNOTATION}']"}
        }
        assert {"name": "rule", "mountPath": "/etc/ai-operator/rule", "readOnly": True} in (
            container["volumeMounts"]
        )
    path = tmp_path / "rule.yaml"
    path.write_text(manifest.config_map["data"]["rule.yaml"])
    assert read_rule_file(str(path), digest) == rule.model_copy(update={"status": None})


def test_tokens_come_only_from_the_secret_and_only_where_used() -> None:
    """Tokens are secretKeyRefs (never values); each step gets only the tokens it uses."""
    options = CompileOptions(secret_name="team-secrets")
    wanted = {"fetch": {"GITHUB_TOKEN"}, "decide": {"GITHUB_TOKEN", "AI_TOKEN"}}
    wanted |= {"act": {"GITHUB_TOKEN"}, "tally": set(), "report": set()}
    keys = {"GITHUB_TOKEN": "github-token", "AI_TOKEN": "ai-token"}
    for name, container in containers(compiled(make_rule(), options)).items():
        env = env_of(container)
        tokens = {var for var in env if var.endswith("_TOKEN")}
        assert tokens == wanted[name], name
        for var in tokens:
            assert "value" not in env[var]
            assert env[var]["valueFrom"] == {
                "secretKeyRef": {"name": "team-secrets", "key": keys[var]}
            }


def test_token_values_in_the_environment_never_reach_the_manifest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Compiling reads no token: values set where the compiler runs are not in its output."""
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-compile-time-secret")
    monkeypatch.setenv("AI_TOKEN", "sk-compile-time-secret")
    text = to_yaml([compile_rule(make_rule(), target, OPTIONS) for target in ("argo", "cronjob")])
    assert "compile-time-secret" not in text


def test_every_step_logs_json_and_reads_the_optional_config_map() -> None:
    """``LOG_FORMAT=json`` and an optional ``envFrom`` ConfigMap on every step."""
    for container in containers(compiled(make_rule())).values():
        assert env_of(container)["LOG_FORMAT"]["value"] == "json"
        assert container["envFrom"] == [
            {"configMapRef": {"name": "ai-operator-config", "optional": True}}
        ]
    no_config = compiled(make_rule(), CompileOptions(config_map=None))
    assert all("envFrom" not in c for c in containers(no_config).values())


# --- names, labels, schedule ------------------------------------------------------------------


def test_a_long_rule_name_is_cut_to_argos_limits_with_a_hash() -> None:
    """Names fit Argo (52) and ConfigMaps/labels (63); two long names sharing a start differ."""
    first, second = compiled(make_rule(LONG_NAME)), compiled(make_rule(LONG_NAME + "y"))
    assert len(first["metadata"]["name"]) <= 52
    assert first["metadata"]["name"] != second["metadata"]["name"]
    assert first["metadata"]["name"].startswith("reconcile-every-dependency")
    command = containers(first)["act"]["command"]
    shard = command[command.index("--outcomes") + 1] + "-f"
    assert len(shard) <= 63 and shard.startswith("ai-operator-memo-reconcile")
    assert len(first["metadata"]["labels"]["aioperator.io/rule"]) <= 63
    assert first["metadata"]["annotations"]["aioperator.io/rule"].endswith("/" + LONG_NAME)


@pytest.mark.parametrize(
    ("name", "limit", "expected"),
    [
        pytest.param("short", 52, "short", id="unchanged"),
        pytest.param("a.b", 52, "a-b-", id="dots-replaced-and-hashed"),
        pytest.param("x" * 60, 52, "x" * 43 + "-", id="cut-and-hashed"),
    ],
)
def test_bounded_name(name: str, limit: int, expected: str) -> None:
    """A name that must change keeps its start and gains an 8-character hash."""
    result = bounded_name(name, limit)
    assert result.startswith(expected) and len(result) <= limit
    assert result == name or len(result) == len(expected) + 8


def test_labels_mark_the_cron_workflow_its_runs_and_their_pods() -> None:
    """The rule label is on the CronWorkflow, on each Workflow it creates and on each pod."""
    document = compiled(make_rule("staging-automerge"))
    expected = {
        "app.kubernetes.io/name": "ai-operator",
        "app.kubernetes.io/component": "reconciliation",
        "app.kubernetes.io/managed-by": "ai-operator",
        "app.kubernetes.io/part-of": "ai-operator",
        "aioperator.io/rule": "staging-automerge",
    }
    assert document["metadata"]["labels"] == expected
    scheduled = expected | {"aioperator.io/trigger": "schedule"}
    assert document["spec"]["workflowMetadata"]["labels"] == scheduled
    assert workflow_spec(document)["podMetadata"]["labels"] == expected


def test_the_spec_hash_is_annotated_on_the_cron_workflow_and_its_runs() -> None:
    """Each run can be traced to the version of the rule that made it."""
    rule = make_rule()
    manifest = compile_rule(rule, "argo", OPTIONS)
    document = manifest.document
    assert document["metadata"]["annotations"]["aioperator.io/spec-hash"] == rule.spec_hash()
    assert manifest.workflow_template is not None
    run = manifest.workflow_template["spec"]["workflowMetadata"]["annotations"]
    assert run["aioperator.io/spec-hash"] == rule.spec_hash()
    assert run["workflows.argoproj.io/title"] == rule.qualified_name


@pytest.mark.parametrize(
    ("spec", "schedules", "timezone", "note"),
    [
        pytest.param({"reconciliationInterval": 20}, ["* * * * *"], None, "shorter than a minute", id="20s-every-minute"),
        pytest.param({"reconciliationInterval": 300}, ["*/5 * * * *"], None, None, id="5-minutes-exact"),
        pytest.param({}, ["* * * * *"], None, "shorter than a minute", id="default-30s"),
        pytest.param({"schedule": "0 9 * * *", "timezone": "Asia/Tokyo"}, ["0 9 * * *"], "Asia/Tokyo", None, id="cron-and-timezone"),
    ],
)  # fmt: skip
def test_schedule_comes_from_the_rule(
    spec: dict[str, Any], schedules: list[str], timezone: str | None, note: str | None
) -> None:
    """``spec.schedules`` (Argo 4's list) from the rule; an approximation is noted."""
    manifest = compile_rule(make_rule(**spec), "argo", OPTIONS)
    cron = manifest.document["spec"]
    assert cron["schedules"] == schedules
    assert cron.get("timezone") == timezone
    annotation = manifest.document["metadata"]["annotations"].get("aioperator.io/schedule-note")
    if note is None:
        assert manifest.notes == () and annotation is None
    else:
        assert note in manifest.notes[0] and annotation == manifest.notes[0]


def test_the_options_timezone_applies_when_the_rule_names_none() -> None:
    """A cluster default timezone fills in; the rule's own wins."""
    options = CompileOptions(timezone="Europe/Berlin")
    assert compiled(make_rule(), options)["spec"]["timezone"] == "Europe/Berlin"
    own = make_rule(schedule="0 * * * *", timezone="UTC")
    assert compiled(own, options)["spec"]["timezone"] == "UTC"


def test_cron_settings_forbid_overlap_and_bound_history() -> None:
    """One pass at a time, a starting deadline, history limits, suspend from the rule."""
    spec = compiled(make_rule(suspend=True))["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] == 60
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 3)
    assert spec["suspend"] is True
    assert compiled(make_rule())["spec"]["suspend"] is False


def test_namespace_defaults_to_the_rules_and_can_be_overridden() -> None:
    """The CronWorkflow lives with its rule unless the options name a namespace."""
    assert compiled(make_rule())["metadata"]["namespace"] == "ai-operator-system"
    other = compiled(make_rule(), CompileOptions(namespace="argo"))
    assert other["metadata"]["namespace"] == "argo"


# --- the workflow ------------------------------------------------------------------------------


def test_workflow_runs_hardened_and_cleans_up() -> None:
    """Non-root pods, read-only roots, no capabilities, a /tmp emptyDir, GC, TTL, deadline."""
    spec = workflow_spec(compiled(make_rule()))
    assert spec["serviceAccountName"] == "ai-operator-workflow"
    assert spec["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "fsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert spec["podGC"] == {"strategy": "OnPodSuccess", "deleteDelayDuration": "10m"}
    assert spec["ttlStrategy"] == {"secondsAfterSuccess": 3600, "secondsAfterFailure": 86400}
    assert spec["activeDeadlineSeconds"] == 1800
    assert spec["volumes"][0] == {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}
    for container in containers(compiled(make_rule())).values():
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        }
        assert container["volumeMounts"] == [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "rule", "mountPath": "/etc/ai-operator/rule", "readOnly": True},
        ]
        assert container["resources"]["requests"] == {"cpu": "50m", "memory": "128Mi"}


def test_step_command_lines_are_the_step_contract() -> None:
    """Each container runs exactly its ``ai-operator step`` command line."""
    commands = {name: c["command"] for name, c in containers(compiled(make_rule())).items()}
    assert commands == {
        "fetch": ["ai-operator", "step", "fetch", "--output", "/tmp/outputs/prs.json",
                  "--counts-output", "/tmp/outputs/counts.json",
                  "--namespace", "{{workflow.namespace}}",
                  "--pull-requests", "{{workflow.parameters.pull-requests}}",
                  "--repository", "{{workflow.parameters.repository}}",
                  "--not-before", "{{workflow.parameters.not-before}}", "--limit", "100",
                  "--outcomes", "ai-operator-memo-staging-automerge", "--max-age", "24h"],
        "decide": ["ai-operator", "step", "decide", "--pr", "{{inputs.parameters.pr}}",
                   "--output", "/tmp/outputs/decision.json", "--run", "{{workflow.name}}",
                   "--namespace", "{{workflow.namespace}}",
                   "--outcomes", "ai-operator-memo-staging-automerge", "--max-age", "24h"],
        "act": ["ai-operator", "step", "act", "--decisions", "{{inputs.parameters.decision}}",
                "--output", "/tmp/outputs/results.json",
                "--outcome-output", "/tmp/outputs/outcome.json", "--run", "{{workflow.name}}",
                "--namespace", "{{workflow.namespace}}", "--lease", "staging-automerge-act",
                "--outcomes", "ai-operator-memo-staging-automerge", "--max-age", "24h"],
        "tally": ["ai-operator", "step", "tally", "--outcomes", "{{inputs.parameters.outcomes}}",
                  "--counts", "{{inputs.parameters.counts}}", "--run", "{{workflow.name}}",
                  "--summary-output", "/tmp/outputs/summary.json"],
        "report": ["ai-operator", "step", "report", "--summary",
                   "{{workflow.outputs.parameters.summary}}", "--status", "{{workflow.status}}",
                   "--duration", "{{workflow.duration}}", "--workflow", "{{workflow.name}}",
                   "--namespace", "{{workflow.namespace}}", "--lease", "staging-automerge-act"],
    }  # fmt: skip
    in_order = [tuple(commands[n]) for n in ("fetch", "decide", "act", "tally", "report")]
    fetch = fetch_command(make_rule(), OPTIONS)
    decide = decide_command(make_rule(), OPTIONS)
    act = act_command(make_rule(), OPTIONS)
    report = report_command(make_rule())
    assert in_order == [fetch, decide, act, TALLY_COMMAND, report]


@pytest.mark.parametrize(
    ("cap", "per_run", "limit"),
    [
        pytest.param(100, 200, "100", id="the-rules-cap"),
        pytest.param(1000, 200, "200", id="what-one-run-can-hold"),
        pytest.param(1000, 50, "50", id="a-smaller-run"),
    ],
)
def test_one_run_decides_at_most_the_cap_and_what_a_workflow_can_hold(
    cap: int, per_run: int, limit: str
) -> None:
    """fetch lists at most min(maxPullRequests, max_decisions_per_run) PRs to decide."""
    options = CompileOptions(max_decisions_per_run=per_run)
    command = containers(compiled(make_rule(maxPullRequests=cap), options))["fetch"]["command"]
    assert command[command.index("--limit") + 1] == limit


def test_fetch_outputs_the_pr_list_and_the_counts_with_defaults() -> None:
    """A fetch that wrote nothing yields ``[]`` (the branches are then skipped) and ``{}``."""
    outputs = template(compiled(make_rule()), "fetch")["outputs"]["parameters"]
    assert outputs == [
        {"name": "prs", "valueFrom": {"path": "/tmp/outputs/prs.json", "default": "[]"}},
        {"name": "counts", "valueFrom": {"path": "/tmp/outputs/counts.json", "default": "{}"}},
    ]


def test_fetch_runs_with_the_workflow_accounts_token_to_read_the_memo() -> None:
    """fetch reads the memo ConfigMaps with the pod's service-account token (the chart grants
    ``get`` on ConfigMaps to that account): nothing turns its mount off or swaps the account."""
    document = compiled(make_rule())
    spec, fetch = workflow_spec(document), template(document, "fetch")
    assert spec["serviceAccountName"] == OPTIONS.service_account
    assert spec.get("automountServiceAccountToken") is not False
    assert "serviceAccountName" not in fetch
    assert fetch.get("automountServiceAccountToken") is not False
    assert "serviceAccountName" not in spec.get("executor", {})


def test_each_pr_gets_its_own_bounded_branch() -> None:
    """withParam over fetch's list; pr, key and shard from each item; parallelism on the DAG."""
    document = compiled(make_rule(), CompileOptions(parallelism=7))
    settle = task(document, "settle")
    assert settle["template"] == "pull-request"
    assert settle["withParam"] == "{{tasks.fetch.outputs.parameters.prs}}"
    assert settle["depends"] == "fetch"
    assert settle["arguments"]["parameters"] == [{"name": "pr", "value": "{{item}}"}]
    dag = template(document, "reconcile")
    assert dag["parallelism"] == 7
    assert dag["dag"]["failFast"] is False


def test_a_branch_decides_then_acts_on_that_decision_alone() -> None:
    """decide gets the reference; act gets that one decision, never an aggregate of them."""
    document = compiled(make_rule())
    decide, act = task(document, "decide", "pull-request"), task(document, "act", "pull-request")
    assert decide["arguments"]["parameters"] == [
        {"name": "pr", "value": "{{inputs.parameters.pr}}"}
    ]
    assert act["depends"] == "decide"
    assert act["arguments"]["parameters"] == [
        {"name": "decision", "value": "{{tasks.decide.outputs.parameters.decision}}"}
    ]
    assert template(document, "pull-request")["outputs"]["parameters"] == [
        {"name": "outcome", "valueFrom": {"parameter": "{{tasks.act.outputs.parameters.outcome}}"}}
    ]


def test_nothing_is_memoized_by_argo_the_steps_keep_the_outcome_index() -> None:
    """Argo's cache would replay a branch on facts fetch no longer sees: no template memoizes;
    fetch reads and act writes the rule's own outcome index, aged by ``memo_max_age``."""
    document = compiled(make_rule(), CompileOptions(memo_max_age="6h"))
    assert all("memoize" not in t for t in document["spec"]["workflowSpec"]["templates"])
    index = ["--outcomes", "ai-operator-memo-staging-automerge", "--max-age", "6h"]
    for step in ("fetch", "act"):
        command = containers(document)[step]["command"]
        assert command[-4:] == index


@pytest.mark.parametrize("step", ["fetch", "decide", "act"])
def test_steps_retry_only_transient_failures(step: str) -> None:
    """Exit code 75 (EX_TEMPFAIL) is retried with backoff; anything else is final."""
    retry = template(compiled(make_rule()), step)["retryStrategy"]
    assert retry["expression"] == "asInt(lastRetry.exitCode) == 75"
    assert retry["retryPolicy"] == "OnFailure"
    assert retry["limit"] == 3
    assert retry["backoff"] == {"duration": "5s", "factor": 2, "maxDuration": "2m"}


def test_the_tally_runs_after_any_branch_outcome_and_exports_the_counts() -> None:
    """The tally runs whatever the branches did; its counts (no PR text) go to the exit handler."""
    document = compiled(make_rule())
    tally = task(document, "tally")
    assert (
        tally["depends"] == "settle.Succeeded || settle.Failed || settle.Errored || settle.Skipped"
    )
    assert tally["arguments"]["parameters"] == [
        {"name": "outcomes", "value": "{{tasks.settle.outputs.parameters.outcome}}"},
        {"name": "counts", "value": "{{tasks.fetch.outputs.parameters.counts}}"},
    ]
    tally_template = template(document, "tally")
    assert tally_template["inputs"]["parameters"] == [
        {"name": "outcomes", "default": "[]"},
        {"name": "counts", "default": "{}"},
    ]
    assert tally_template["outputs"]["parameters"] == [
        {
            "name": "summary",
            "globalName": "summary",
            "valueFrom": {"path": "/tmp/outputs/summary.json", "default": "{}"},
        },
    ]
    assert template(document, "act")["outputs"]["parameters"][1] == {
        "name": "outcome",
        "valueFrom": {"path": "/tmp/outputs/outcome.json", "default": "{}"},
    }


def test_act_holds_the_token_semaphore() -> None:
    """Rules sharing a GitHub token never mutate at once; the semaphore can be turned off."""
    act = template(compiled(make_rule(), CompileOptions(token_semaphore="sync/team-token")), "act")
    assert act["synchronization"] == {
        "semaphores": [{"configMapKeyRef": {"name": "sync", "key": "team-token"}}]
    }
    assert "synchronization" not in template(
        compiled(make_rule(), CompileOptions(token_semaphore=None)), "act"
    )


def test_report_is_the_exit_handler() -> None:
    """The report step always runs, reading act's global output and the workflow status."""
    document = compiled(make_rule())
    assert workflow_spec(document)["onExit"] == "report"
    assert workflow_spec(document)["entrypoint"] == "reconcile"
    assert "retryStrategy" not in template(document, "report")


# --- options and errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"parallelism": 0}, "parallelism", id="no-parallelism"),
        pytest.param({"token_semaphore": "no-key"}, "configmap/key", id="semaphore-without-key"),
        pytest.param({"decide_retry_limit": -1}, "decide_retry_limit", id="negative-retries"),
    ],
)
def test_options_that_cannot_work_are_refused(options: dict[str, Any], message: str) -> None:
    """Bad options fail at once with a message naming the option."""
    with pytest.raises(CompileError, match=message):
        CompileOptions(**options)


def test_two_rules_compiling_to_one_object_are_refused() -> None:
    """Same name in two namespaces, compiled into one namespace: an error, not an overwrite."""
    first = make_rule("web")
    second = PRReconciliationRule.model_validate(
        first.model_dump(mode="json") | {"metadata": {"name": "web", "namespace": "other"}}
    )
    assert len(compile_rules([first, second], "argo", OPTIONS)) == 2
    with pytest.raises(CompileError, match="both compile to CronWorkflow argo/web"):
        compile_rules([first, second], "argo", CompileOptions(namespace="argo"))


def test_an_unknown_target_is_refused() -> None:
    """Only argo and cronjob exist."""
    with pytest.raises(CompileError, match="unknown target"):
        compile_rule(make_rule(), "tekton", OPTIONS)  # type: ignore[arg-type]


# --- golden files ------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", EXAMPLE_CASES)
def test_golden_cron_workflows(rule: PRReconciliationRule) -> None:
    """examples/compiled/<rule>.cronworkflow.yaml is what the example compiles to.

    Regenerate with ``AI_OPERATOR_UPDATE_GOLDEN=1 pytest tests/unit/test_compile_argo.py``.
    """
    check_golden(COMPILED / f"{rule.metadata.name}.cronworkflow.yaml", rule, "argo")


def check_golden(path: Path, rule: PRReconciliationRule, target: Any) -> None:
    text = to_yaml([compile_rule(rule, target, OPTIONS)])
    if os.environ.get("AI_OPERATOR_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path.name} is missing: run with AI_OPERATOR_UPDATE_GOLDEN=1"
    assert path.read_text() == text, f"{path.name} drifted: run with AI_OPERATOR_UPDATE_GOLDEN=1"


@pytest.mark.parametrize("rule", ALL_RULES)
def test_the_workflow_template_and_the_cron_workflow_validate_as_compiled(
    rule: PRReconciliationRule,
) -> None:
    """Each document as applied (the CronWorkflow only references the template) passes its own
    Argo schema, made strict."""
    manifest = compile_rule(rule, "argo", OPTIONS)
    assert manifest.workflow_template is not None
    assert workflow_errors(manifest.workflow_template) == []
    assert workflow_errors(manifest.document) == []
    assert manifest.document["spec"]["workflowSpec"] == {
        "workflowTemplateRef": {"name": manifest.workflow_template["metadata"]["name"]}
    }
