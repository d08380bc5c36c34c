"""Renders the Helm chart with a real, pinned helm binary and reads what it rendered.

helm is ``.cache/bin/helm`` (put there by ``scripts/fetch-helm``), else ``$HELM``, else the
``helm`` on ``PATH``. It runs with an empty environment of its own (``HOME`` and the XDG
directories in a temporary directory, no kubeconfig): ``helm template`` and ``helm lint`` never
contact a cluster.

:func:`controller_rules` returns the permissions the chart grants the controller, for tests that
compare them with the requests the controller makes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "ai-operator"
VALUES = Path(__file__).resolve().parent / "values"
VALUE_FILES = sorted(VALUES.glob("*.yaml"))

RELEASE = "ai-operator"
NAMESPACE = "ai-operator-system"
CONFIG_PATH = "/etc/ai-operator/controller.yaml"


def find_helm() -> Path | None:
    """The pinned helm, else one named by $HELM or found on PATH."""
    pinned = ROOT / ".cache" / "bin" / "helm"
    if pinned.is_file() and os.access(pinned, os.X_OK):
        return pinned
    found = os.environ.get("HELM") or shutil.which("helm")
    return Path(found) if found else None


class HelmFailed(Exception):
    """helm exited non-zero; the message is its stderr."""


@dataclass
class Helm:
    """A helm binary with a private HOME; renders are cached per argument list."""

    binary: Path
    home: Path
    _cache: dict[tuple[str, ...], Rendered] = field(default_factory=dict)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.home),
            "XDG_CACHE_HOME": str(self.home / "cache"),
            "XDG_CONFIG_HOME": str(self.home / "config"),
            "XDG_DATA_HOME": str(self.home / "data"),
            "KUBECONFIG": str(self.home / "no-kubeconfig"),
        }
        return subprocess.run(
            [str(self.binary), *args],
            check=False,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    def template(
        self,
        *value_files: Path,
        values: Sequence[str] = (),
        release: str = RELEASE,
        namespace: str = NAMESPACE,
        chart: Path = CHART,
    ) -> Rendered:
        """``helm template`` (CRDs included) as parsed documents; raises :class:`HelmFailed`."""
        args = ["template", release, str(chart), "--namespace", namespace, "--include-crds"]
        args += [arg for path in value_files for arg in ("--values", str(path))]
        args += [arg for value in values for arg in ("--set", value)]
        key = tuple(args)
        if key not in self._cache:
            result = self.run(*args)
            if result.returncode != 0:
                raise HelmFailed(result.stderr)
            docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
            self._cache[key] = Rendered(docs, namespace)
        return self._cache[key]

    def template_error(self, *value_files: Path, values: Sequence[str] = ()) -> str:
        """The error of a ``helm template`` that must fail."""
        try:
            self.template(*value_files, values=values)
        except HelmFailed as failure:
            return str(failure)
        raise AssertionError(f"helm template succeeded with {value_files} {values}")


@dataclass(frozen=True)
class Rendered:
    """The documents of one ``helm template`` run."""

    docs: list[dict[str, Any]]
    release_namespace: str

    def of_kind(self, *kinds: str) -> list[dict[str, Any]]:
        return [doc for doc in self.docs if doc["kind"] in kinds]

    def named(self, kind: str, name: str) -> list[dict[str, Any]]:
        """Every object of this kind and name (one per namespace)."""
        return [doc for doc in self.of_kind(kind) if doc["metadata"]["name"] == name]

    def one(self, kind: str, name: str | None = None, namespace: str | None = None) -> Any:
        found = [
            doc
            for doc in self.of_kind(kind)
            if name in (None, doc["metadata"]["name"])
            and namespace in (None, doc["metadata"].get("namespace"))
        ]
        assert len(found) == 1, f"expected one {kind} {name or ''} in {namespace}, got {found}"
        return found[0]

    def names(self, kind: str, namespace: str) -> set[str]:
        return {
            doc["metadata"]["name"]
            for doc in self.of_kind(kind)
            if doc["metadata"].get("namespace") == namespace
        }

    @property
    def deployment(self) -> Any:
        return self.one("Deployment")

    @property
    def container(self) -> Any:
        return self.deployment["spec"]["template"]["spec"]["containers"][0]

    @property
    def controller_config_map(self) -> Any:
        volumes = self.deployment["spec"]["template"]["spec"]["volumes"]
        (config,) = [volume for volume in volumes if volume["name"] == "config"]
        return self.one("ConfigMap", config["configMap"]["name"], self.release_namespace)

    def controller_config(self) -> Any:
        """The controller's configuration file, parsed."""
        return yaml.safe_load(self.controller_config_map["data"]["controller.yaml"])

    def settings(self) -> dict[str, str]:
        name = self.controller_config()["compile"]["configMap"]
        data: dict[str, str] = self.one("ConfigMap", name, self.release_namespace)["data"]
        return data

    def pipeline_namespaces(self) -> list[str]:
        """Where the pipelines' objects go: the served namespaces, else the release's."""
        return self.controller_config()["namespaces"] or [self.release_namespace]


def controller_rules(rendered: Rendered) -> list[dict[str, Any]]:
    """The PolicyRules granted to the controller's ServiceAccount, by every role bound to it.

    The rules for its namespaces are the same in every one of them (one role); reading the limits
    (cluster-wide) and the leader's Lease (release namespace) are roles of their own.
    """
    account = rendered.deployment["spec"]["template"]["spec"]["serviceAccountName"]
    roles: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for binding in rendered.of_kind("RoleBinding", "ClusterRoleBinding"):
        if not any(subject["name"] == account for subject in binding["subjects"]):
            continue
        ref = binding["roleRef"]
        where = None if ref["kind"] == "ClusterRole" else binding["metadata"]["namespace"]
        roles[(ref["kind"], ref["name"])] = rendered.one(ref["kind"], ref["name"], where)["rules"]
    return [rule for rules in roles.values() for rule in rules]


def allows(rules: Iterable[Mapping[str, Any]], group: str, resource: str, verb: str) -> bool:
    """Whether a PolicyRule list allows ``verb`` on ``group``/``resource``."""
    return any(
        group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]
        for rule in rules
    )


def permissions(rules: Iterable[Mapping[str, Any]]) -> Iterator[tuple[str, str, str]]:
    """Every (group, resource, verb) a PolicyRule list allows."""
    for rule in rules:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    yield group, resource, verb
