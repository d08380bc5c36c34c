"""Specification: a compiled manifest is reviewable, and a step runs only the rule it was compiled with.

The rule appears once in ``ai-operator compile``'s output, as readable YAML in its own ConfigMap;
every pod mounts it and checks it against the SHA-256 its pod carries as an annotation. A
one-line change of a rule's instruction is therefore a small diff that shows the new line as
written, and a rule file changed or cut short since the run was compiled is refused on one line.
"""

from __future__ import annotations

import difflib
import os
import sys
from pathlib import Path

import pytest

from ai_operator.jobs.rules.encoding import (
    RULE_DIGEST_ENV,
    RULE_ENV,
    RULE_FILE_ENV,
    StepInputError,
    encode_rule,
    rule_digest,
    rule_from_env,
    rule_text,
)
from ai_operator.jobs.rules.files import load_rules
from ai_operator.jobs.rules.model import PRReconciliationRule
from ai_operator.pipelines.compile import compile_rule, to_yaml
from ai_operator.pipelines.options import CompileOptions, Target
from tests.argo_interpreter import run_cron_workflow
from tests.argo_schema import ROOT
from tests.factories import make_rule

EXAMPLES = {loaded.rule.metadata.name: loaded.rule for loaded in load_rules(
    sorted((ROOT / "examples").glob("*.yaml"))
)}  # fmt: skip
OPTIONS = CompileOptions()
RULE = make_rule(instruction="Settle {{ pr.title }} of {{ workflow.name }} {{=sprig.x}}.\n")


def with_instruction(rule: PRReconciliationRule, instruction: str) -> PRReconciliationRule:
    document = rule.to_document()
    document["spec"]["instruction"] = instruction
    return PRReconciliationRule.model_validate(document)


def changed_lines(before: str, after: str) -> list[str]:
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
    return [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]


# --- the diff a reviewer reads -----------------------------------------------------------------


@pytest.mark.parametrize("target", ["argo", "cronjob"])
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_a_one_line_instruction_change_is_a_small_diff_that_shows_the_new_line(
    name: str, target: Target
) -> None:
    """Changing one word of one line changes that line (as written), the digest and spec hashes.

    At most four lines are replaced (the rule file's line, the pods' digest, and the spec hash
    on the object and, for Argo, on its runs); none of them is an opaque blob of the rule.
    """
    rule = EXAMPLES[name]
    lines = rule.spec.instruction.splitlines()
    index = next(i for i, line in enumerate(lines) if "{{" in line)
    new_line = lines[index] + " (reviewed)"
    instruction = "\n".join([*lines[:index], new_line, *lines[index + 1 :]]) + "\n"
    before = to_yaml([compile_rule(rule, target, OPTIONS)])
    after = to_yaml([compile_rule(with_instruction(rule, instruction), target, OPTIONS)])

    changed = changed_lines(before, after)
    removed = [line for line in changed if line.startswith("-")]
    added = [line for line in changed if line.startswith("+")]
    assert len(removed) == len(added) <= 4
    assert sum(new_line in line for line in added) == 1  # verbatim, Jinja tags and all
    assert sum(lines[index] in line for line in removed) == 1
    assert all(len(line) < 200 for line in changed)  # no encoded rule anywhere


def test_the_rule_file_is_the_rule_as_a_person_writes_it() -> None:
    """Block scalars for the instruction, keys in the rule's order, tags as written."""
    text = rule_text(RULE)
    assert text.startswith("apiVersion: aioperator.io/v1alpha1\nkind: PRReconciliationRule\n")
    assert (
        "  instruction: |\n    Settle {{ pr.title }} of {{ workflow.name }} {{=sprig.x}}.\n" in text
    )


@pytest.mark.parametrize("target", ["argo", "cronjob"])
def test_a_longer_instruction_grows_the_output_once(target: Target) -> None:
    """The rule is written once: 2,000 more bytes of instruction add about 2,000 bytes of output."""
    line = "Escalate when the description mentions a database migration. " * 2
    longer = with_instruction(RULE, RULE.spec.instruction + (line.strip() + "\n") * 16)
    added = len(longer.spec.instruction) - len(RULE.spec.instruction)
    before = to_yaml([compile_rule(RULE, target, OPTIONS)])
    after = to_yaml([compile_rule(longer, target, OPTIONS)])
    assert added <= len(after) - len(before) <= added + 16 * 8  # the block's indentation


# --- what a step accepts ------------------------------------------------------------------------


def rule_env(tmp_path: Path, text: str, digest: str | None) -> dict[str, str]:
    path = tmp_path / "rule.yaml"
    path.write_text(text)
    return {RULE_FILE_ENV: str(path)} | ({RULE_DIGEST_ENV: digest} if digest is not None else {})


GOOD = rule_text(RULE)


@pytest.mark.parametrize(
    ("text", "digest", "message"),
    [
        pytest.param(
            GOOD.replace("Settle", "Merge"), rule_digest(GOOD),
            "is not the rule this run was compiled with", id="changed-since",
        ),
        pytest.param(
            GOOD[: len(GOOD) // 2], rule_digest(GOOD),
            "is not the rule this run was compiled with", id="cut-short",
        ),
        pytest.param("spec: [", None, "is not YAML", id="not-yaml"),
        pytest.param("kind: Pod\n", None, "is not a valid rule", id="not-a-rule"),
    ],
)  # fmt: skip
def test_a_step_refuses_a_rule_file_it_was_not_compiled_with(
    tmp_path: Path, text: str, digest: str | None, message: str
) -> None:
    """The error names the variable and the file and says what is wrong, on one line."""
    with pytest.raises(StepInputError, match=message) as raised:
        rule_from_env(rule_env(tmp_path, text, digest))
    assert RULE_FILE_ENV in str(raised.value) and "\n" not in str(raised.value)


def test_a_missing_rule_file_says_the_config_map_is_missing(tmp_path: Path) -> None:
    """An optional volume of a missing ConfigMap is an empty directory: the step says so."""
    env = {RULE_FILE_ENV: str(tmp_path / "rule.yaml"), RULE_DIGEST_ENV: rule_digest(GOOD)}
    with pytest.raises(StepInputError, match="does not exist: the rule's ConfigMap is missing"):
        rule_from_env(env)


def test_the_right_file_is_read_and_the_encoded_variable_still_wins(tmp_path: Path) -> None:
    """The file matching its digest is the rule; ``AI_OPERATOR_RULE`` (base64) is read first."""
    assert rule_from_env(rule_env(tmp_path, GOOD, rule_digest(GOOD))) == RULE
    other = make_rule("other")
    env = rule_env(tmp_path, GOOD, rule_digest(GOOD)) | {RULE_ENV: encode_rule(other)}
    assert rule_from_env(env) == other


# --- in a run -----------------------------------------------------------------------------------


def test_a_run_whose_config_map_changed_since_fails_its_steps_on_one_line() -> None:
    """The ConfigMap edited after the CronWorkflow was compiled: fetch refuses it, nothing runs.

    The same CronWorkflow with its own ConfigMap gets past reading the rule (and then fails on
    the GitHub it cannot reach here, which is not this test's concern).
    """
    manifest = compile_rule(RULE, "argo", OPTIONS)
    assert manifest.config_map is not None
    edited = {**manifest.config_map, "data": {"rule.yaml": GOOD.replace("Settle", "Merge")}}
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/"),
        "GITHUB_GRAPHQL_URL": "http://127.0.0.1:9/graphql",
    }
    secrets = {("ai-operator-secrets", "github-token"): "ghp_" + "0" * 36}
    prefix = (sys.executable, "-m", "ai_operator.pipelines")
    run = run_cron_workflow(
        manifest.document,
        env=env,
        secrets=secrets,
        config_maps=[edited],
        command_prefix=prefix,
        workflow_templates=[manifest.workflow_template],
    )
    (fetch,) = [node for node in run.nodes if node.template == "fetch"]
    assert fetch.phase == "Failed" and fetch.attempts == 1
    assert "is not the rule this run was compiled with" in fetch.stderr
