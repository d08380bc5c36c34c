"""The start-up sweep: what rules deleted while no controller watched have left behind.

Run once per served scope after the first list of its rules (by the leader only):

- generated CronWorkflows and CronJobs, and the rules' ConfigMaps, whose controlling rule no
  longer exists (the garbage
  collector removes them too, in its own time; an object of a rule re-created under the same
  name is left to that rule, which adopts it);
- outcome indexes (ConfigMaps labelled ``aioperator.io/outcome-index`` and named
  ``ai-operator-memo-...``, :mod:`jobs.clients.outcome_index`) of rules that no longer exist;
  and :func:`own_memo` (at every full list) makes each living rule the owner of its index,
  which an act step creates without an owner when it does not know the rule's uid (``compile``
  run outside the cluster), so that Kubernetes deletes it with its rule;
- Pushgateway groups of rules that no longer exist, so that no alert fires for a rule that is
  gone.

Nothing here raises: a failure is logged and the next sweep (the next start, the next
leadership) tries again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from ai_operator.jobs.log import get_logger
from ai_operator.jobs.rules.model import KIND
from ai_operator.pipelines.controller.config import ControllerConfig
from ai_operator.pipelines.controller.kube import CONFIG_MAPS, KubeClient, KubeError, NotFound
from ai_operator.pipelines.controller.objects import RuleKey, RuleRef, named
from ai_operator.pipelines.controller.reconcile import (
    GENERATED,
    MEMO_PREFIX,
    OUTCOME_INDEX_LABEL,
    delete_rule_metrics,
    memo_prefix,
)
from ai_operator.pipelines.options import APP_NAME

MANAGED = f"app.kubernetes.io/managed-by={APP_NAME}"


async def sweep(
    client: KubeClient,
    config: ControllerConfig,
    scope: str | None,
    rules: Iterable[RuleRef],
) -> None:
    """Remove what rules that are not in ``rules`` (the scope's full list) left behind."""
    present = {rule.key for rule in rules}
    log = get_logger("ai_operator.controller").bind(scope=scope or "all namespaces")
    try:
        await _generated(client, scope, present, log)
        if config.target == "argo":
            await _memo(client, scope, present, log)
    except KubeError as exc:
        log.warning("the start-up sweep could not finish", error=str(exc))
    if config.pushgateway_url:
        await _groups(config.pushgateway_url, scope, present, log)


async def own_memo(
    client: KubeClient,
    config: ControllerConfig,
    scope: str | None,
    rules: Iterable[RuleRef],
) -> None:
    """Give each rule's outcome index ConfigMaps an owner reference to the rule (when lacking)."""
    if config.target != "argo":
        return
    owners = {RuleKey(ref.namespace, memo_prefix(ref.name)): ref for ref in rules if ref.uid}
    log = get_logger("ai_operator.controller").bind(scope=scope or "all namespaces")
    try:
        found = await client.list(CONFIG_MAPS, scope, OUTCOME_INDEX_LABEL)
        for item in named(found.items):
            namespace, name = item.metadata.namespace, item.metadata.name
            rule = owners.get(RuleKey(namespace, name[:-2]))
            if rule is None or item.metadata.ownerReferences:
                continue
            reference = rule.owner(controller=False).to_json()
            change = {"metadata": {"ownerReferences": [reference]}}
            await client.patch(CONFIG_MAPS, namespace, name, change)
    except KubeError as exc:
        log.warning("could not own the rules' memo ConfigMaps", error=str(exc))


async def _generated(
    client: KubeClient, scope: str | None, present: set[RuleKey], log: Any
) -> None:
    for resource in (*GENERATED, CONFIG_MAPS):
        try:
            found = await client.list(resource, scope, MANAGED)
        except NotFound:
            continue  # the cluster does not have this kind
        for item in named(found.items):
            owner = item.controller
            namespace, name = item.metadata.namespace, item.metadata.name
            if owner is None or owner.kind != KIND or RuleKey(namespace, owner.name) in present:
                continue
            await client.delete(resource, namespace, name)
            log.info(
                "deleted an object of a rule that no longer exists",
                kind=resource.kind,
                name=f"{namespace}/{name}",
            )


async def _memo(client: KubeClient, scope: str | None, present: set[RuleKey], log: Any) -> None:
    wanted = {RuleKey(key.namespace, memo_prefix(key.name)) for key in present}
    found = await client.list(CONFIG_MAPS, scope, OUTCOME_INDEX_LABEL)
    for item in named(found.items):
        name, namespace = item.metadata.name, item.metadata.namespace
        if not name.startswith(MEMO_PREFIX) or RuleKey(namespace, name[:-2]) in wanted:
            continue
        await client.delete(CONFIG_MAPS, namespace, name)
        log.info("deleted the memo ConfigMap of a rule that no longer exists", name=name)


async def _groups(gateway_url: str, scope: str | None, present: set[RuleKey], log: Any) -> None:
    from ai_operator.jobs.clients.metrics import JOB, GatewayError, list_groups  # noqa: PLC0415

    try:
        groups = await asyncio.to_thread(list_groups, gateway_url)
    except GatewayError as exc:
        log.warning("could not read the Pushgateway's groups", error=str(exc))
        return
    gone: set[RuleKey] = set()
    for labels in groups:
        if labels.get("job") != JOB or not labels.get("rule"):
            continue
        rule = labels["rule"]
        namespace = labels.get("namespace")
        if namespace is None and "/" in rule:  # the earlier design's {rule="namespace/name"}
            namespace, rule = rule.split("/", 1)
        if namespace is None or scope not in (None, namespace):
            continue
        if RuleKey(namespace, rule) not in present:
            gone.add(RuleKey(namespace, rule))
    for key in sorted(gone):
        await delete_rule_metrics(gateway_url, key.namespace, key.name)
