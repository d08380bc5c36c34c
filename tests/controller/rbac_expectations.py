"""Every request the controller sends, as RBAC names it: (verb, API group, resource, subresource).

The controller's tests record each request the emulated API server receives and check that the
set is exactly :data:`CONTROLLER_REQUESTS` (nothing more, nothing missing). The Helm chart's
RBAC test compares the controller's Role with it, plus :data:`CONTROLLER_IMPLICIT_PERMISSIONS`,
which no request shows but the API server checks.
"""

from __future__ import annotations

Permission = tuple[str, str, str, str]

CONTROLLER_REQUESTS: frozenset[Permission] = frozenset(
    {
        # Rules: list and watch them (the status is the only thing written).
        ("list", "aioperator.io", "prreconciliationrules", ""),
        ("watch", "aioperator.io", "prreconciliationrules", ""),
        ("patch", "aioperator.io", "prreconciliationrules", "status"),
        # The compiled objects: read one, apply it (a PATCH), find and delete a rule's others.
        ("get", "argoproj.io", "cronworkflows", ""),
        ("patch", "argoproj.io", "cronworkflows", ""),
        ("list", "argoproj.io", "cronworkflows", ""),
        ("delete", "argoproj.io", "cronworkflows", ""),
        # Each Argo rule's WorkflowTemplate (what its runs do) and, with events, its Sensor.
        ("get", "argoproj.io", "workflowtemplates", ""),
        ("patch", "argoproj.io", "workflowtemplates", ""),
        ("list", "argoproj.io", "workflowtemplates", ""),
        ("delete", "argoproj.io", "workflowtemplates", ""),
        ("get", "argoproj.io", "sensors", ""),
        ("patch", "argoproj.io", "sensors", ""),
        ("list", "argoproj.io", "sensors", ""),
        ("delete", "argoproj.io", "sensors", ""),
        ("get", "batch", "cronjobs", ""),
        ("patch", "batch", "cronjobs", ""),
        ("list", "batch", "cronjobs", ""),
        ("delete", "batch", "cronjobs", ""),
        # The runs, for status.lastRun.
        ("list", "argoproj.io", "workflows", ""),
        ("list", "batch", "jobs", ""),
        # Events on rules.
        ("create", "", "events", ""),
        # The administrator's limits (cluster-scoped): list and watch them, nothing else.
        ("list", "aioperator.io", "prreconciliationlimits", ""),
        ("watch", "aioperator.io", "prreconciliationlimits", ""),
        # The rules' outcome indexes: found by label, owned by their rule (an owner reference,
        # so that Kubernetes deletes them with it), deleted by the sweep.
        # Each rule's own ConfigMap (the rule as readable YAML, which its pods read): read,
        # applied, deleted with an invalid rule and by the sweep, like the compiled objects.
        ("get", "", "configmaps", ""),
        ("list", "", "configmaps", ""),
        ("patch", "", "configmaps", ""),
        ("delete", "", "configmaps", ""),
        # The pause: each rule's namespace, for its annotation aioperator.io/paused (status).
        ("get", "", "namespaces", ""),
        # Leader election: one Lease in the release namespace.
        ("get", "coordination.k8s.io", "leases", ""),
        ("create", "coordination.k8s.io", "leases", ""),
        ("update", "coordination.k8s.io", "leases", ""),
    }
)

CONTROLLER_IMPLICIT_PERMISSIONS: frozenset[Permission] = frozenset(
    {
        # A server-side apply that creates its object is also checked as a create.
        ("create", "argoproj.io", "cronworkflows", ""),
        ("create", "argoproj.io", "workflowtemplates", ""),
        ("create", "argoproj.io", "sensors", ""),
        ("create", "batch", "cronjobs", ""),
        ("create", "", "configmaps", ""),
        # Setting blockOwnerDeletion on an owner reference to a rule needs this where the
        # OwnerReferencesPermissionEnforcement admission plugin is on (OpenShift, for example).
        ("update", "aioperator.io", "prreconciliationrules", "finalizers"),
    }
)
