"""The controller's names for the objects it serves and owns. Pure.

- :class:`RuleKey`: which rule (namespace and name), the key of every per-rule table;
- :class:`RuleRef`: a rule's identity as its children name it (kind, name, uid);
- :class:`RuleObject`: a rule as the API server returned it (its identity, generation,
  resourceVersion, stored status and its spec as stored, not yet validated), read once where the
  controller lists or watches the rules or writes a status, and what every step after that takes;
- :class:`OwnerReference`: an entry of ``metadata.ownerReferences``, read from the objects the
  controller lists (its CronWorkflows, CronJobs, memo ConfigMaps) and written onto them;
- :class:`ListedObject`: any object the controller lists or gets to see whose it is (its name,
  namespace, owners and annotations);
- :class:`WorkflowObject` and :class:`JobObject`: the rule's runs (Argo Workflows, or the Jobs of
  its CronJob), the fields its status is made from.

What the controller reads from the API server stays plain JSON up to here: these are read from
it leniently (a malformed entry is skipped, as the garbage collector would ignore it; a rule
without a name is :class:`Unreadable`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar, cast

from pydantic import BaseModel, ConfigDict, JsonValue, ValidationError, field_validator

from ai_operator.jobs.rules.model import KIND

RULES_API_VERSION = "aioperator.io/v1alpha1"


@dataclass(frozen=True, order=True)
class RuleKey:
    """A rule's namespace and name."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


class OwnerReference(BaseModel):
    """One ``metadata.ownerReferences`` entry."""

    model_config = ConfigDict(extra="allow", frozen=True)

    apiVersion: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    blockOwnerDeletion: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """The entry as the API server takes it (no ``None`` fields)."""
        return self.model_dump(mode="json", exclude_none=True)


@dataclass(frozen=True)
class RuleRef:
    """A rule as the objects it owns name it."""

    namespace: str
    name: str
    uid: str | None
    api_version: str = RULES_API_VERSION
    kind: str = KIND

    @property
    def key(self) -> RuleKey:
        """Which rule this is."""
        return RuleKey(self.namespace, self.name)

    def owner(self, *, controller: bool) -> OwnerReference:
        """The reference to this rule that an object it owns carries.

        ``controller``: the rule controls the object (it generated it; deleting the rule
        deletes it, blocking the deletion until then); otherwise it only owns it.
        """
        if self.uid is None:
            raise ValueError(f"the rule {self.key} has no uid")
        return OwnerReference(
            apiVersion=self.api_version,
            kind=self.kind,
            name=self.name,
            uid=self.uid,
            controller=True if controller else None,
            blockOwnerDeletion=True if controller else None,
        )

    def controls(self, item: ListedObject) -> bool:
        """Whether this rule (this very object, by uid) is ``item``'s controller."""
        return any(ref.uid == self.uid and ref.controller for ref in item.metadata.ownerReferences)

    def left_by_earlier(self, item: ListedObject) -> bool:
        """Whether ``item``'s controller is a rule of this name that no longer exists."""
        return any(
            ref.controller
            and ref.kind == self.kind
            and ref.name == self.name
            and ref.uid != self.uid
            for ref in item.metadata.ownerReferences
        )


class Unreadable(ValueError):
    """What the API server returned is no rule the controller can name (no metadata.name)."""


@dataclass(frozen=True)
class RuleObject:
    """A rule as the API server returned it: who it is, which version, and its spec as stored.

    Nothing here is validated: the checker validates :meth:`source` as ``ai-operator validate``
    would a file (a refused rule is ``Invalid``, with the same errors).
    """

    ref: RuleRef
    generation: int | None = None
    resource_version: str | None = None
    deletion_timestamp: str | None = None
    status: JsonValue = None
    """The stored status, as stored (read it with :func:`~.status.read_status`)."""
    api_version: JsonValue = None
    """``apiVersion`` as stored (None: absent); :attr:`ref` has the one its children name."""
    kind: JsonValue = None
    """``kind`` as stored (None: absent)."""
    labels: JsonValue = None
    """``metadata.labels`` as stored (None: absent), which the checker validates with the rule."""
    spec: JsonValue = None
    """The spec as stored (None: absent)."""

    @classmethod
    def read(cls, item: object) -> RuleObject:
        """The rule in the JSON the API server returned; :class:`Unreadable` when it has no name."""
        document = item if isinstance(item, Mapping) else {}
        metadata = document.get("metadata")
        metadata = metadata if isinstance(metadata, Mapping) else {}
        name = metadata.get("name")
        if not name or not isinstance(name, str):
            raise Unreadable("an object without metadata.name")
        uid, generation = metadata.get("uid"), metadata.get("generation")
        version, deleted = metadata.get("resourceVersion"), metadata.get("deletionTimestamp")
        # The client parsed it from JSON: every value below is JSON.
        stored = cast(Mapping[str, JsonValue], document)
        return cls(
            ref=RuleRef(
                namespace=str(metadata.get("namespace") or ""),
                name=name,
                uid=str(uid) if uid is not None else None,
                api_version=str(document.get("apiVersion") or RULES_API_VERSION),
                kind=str(document.get("kind") or KIND),
            ),
            generation=generation if isinstance(generation, int) else None,
            resource_version=str(version) if version is not None else None,
            deletion_timestamp=str(deleted) if deleted else None,
            status=stored.get("status"),
            api_version=stored.get("apiVersion"),
            kind=stored.get("kind"),
            labels=cast(JsonValue, metadata.get("labels")),
            spec=stored.get("spec"),
        )

    @property
    def key(self) -> RuleKey:
        """Which rule this is."""
        return self.ref.key

    def source(self) -> dict[str, JsonValue]:
        """The rule as ``ai-operator validate`` reads one from a file (no uid, no status)."""
        metadata: dict[str, JsonValue] = {"name": self.ref.name, "namespace": self.ref.namespace}
        if self.labels is not None:
            metadata["labels"] = self.labels
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": metadata,
            "spec": self.spec,
        }

    def detached(self) -> RuleObject:
        """The rule with its own copy of what it stores (for a thread of its own)."""
        copied: tuple[JsonValue, ...] = json.loads(
            json.dumps([self.status, self.labels, self.spec])
        )
        status, labels, spec = copied
        return replace(self, status=status, labels=labels, spec=spec)


# --- what the controller lists: the objects it owns, the rule's runs ----------------------------


class _Read(BaseModel):
    """Lenient: only the fields the controller reads; anything else is ignored."""

    model_config = ConfigDict(extra="ignore")


class ObjectMetadata(_Read):
    """The ``metadata`` of an object the controller may own: who it is, who owns it.

    Read leniently: an owner reference that is not well formed is left out, as is an annotation
    that is not text; a missing name is empty.
    """

    name: str = ""
    namespace: str = ""
    ownerReferences: list[OwnerReference] = []
    annotations: dict[str, str] = {}

    @field_validator("name", "namespace", mode="before")
    @classmethod
    def _text(cls, value: object) -> str:
        return str(value) if value else ""

    @field_validator("ownerReferences", mode="before")
    @classmethod
    def _well_formed(cls, value: object) -> list[OwnerReference]:
        found = []
        for raw in value if isinstance(value, list) else []:
            try:
                found.append(OwnerReference.model_validate(raw))
            except ValidationError:
                continue
        return found

    @field_validator("annotations", mode="before")
    @classmethod
    def _texts(cls, value: object) -> dict[str, str]:
        if not isinstance(value, Mapping):
            return {}
        return {str(k): v for k, v in value.items() if isinstance(v, str)}


class ListedObject(_Read):
    """An object the controller lists or gets to see whose it is (any kind)."""

    metadata: ObjectMetadata = ObjectMetadata()

    @field_validator("metadata", mode="before")
    @classmethod
    def _a_mapping(cls, value: object) -> object:
        return value if isinstance(value, Mapping) else {}

    @classmethod
    def read(cls, item: object) -> ListedObject:
        """``item`` (JSON, as the API server returned it) read leniently; never raises."""
        return cls.model_validate(item if isinstance(item, Mapping) else {})

    @property
    def controller(self) -> OwnerReference | None:
        """The controlling owner, if it has one."""
        return next((ref for ref in self.metadata.ownerReferences if ref.controller), None)


def named(items: Iterable[object]) -> list[ListedObject]:
    """The objects of a list (JSON, as listed) that have a name, read leniently."""
    return [found for found in map(ListedObject.read, items) if found.metadata.name]


class RunMetadata(_Read):
    """A run's ``metadata``: its name and when it was created (RFC 3339)."""

    name: str
    creationTimestamp: str | None = None


class Parameter(_Read):
    """One of a Workflow's global output parameters (``status.outputs.parameters``)."""

    name: str = ""
    value: str | None = None


class WorkflowOutputs(_Read):
    """A Workflow's ``status.outputs``."""

    parameters: list[Parameter] = []


class WorkflowStatus(_Read):
    """The part of an Argo Workflow's ``status`` the rule's status is made from."""

    phase: str | None = None
    startedAt: str | None = None
    finishedAt: str | None = None
    message: str | None = None
    outputs: WorkflowOutputs | None = None

    def output(self, name: str) -> str | None:
        """The global output parameter ``name`` (None when the run has not written it)."""
        for parameter in self.outputs.parameters if self.outputs else ():
            if parameter.name == name:
                return parameter.value
        return None


class WorkflowObject(_Read):
    """An Argo Workflow of the rule (a run), as listed by its rule's label."""

    metadata: RunMetadata
    status: WorkflowStatus = WorkflowStatus()


class JobCondition(_Read):
    """One of a Job's ``status.conditions``."""

    type: str = ""
    status: str = ""
    message: str | None = None
    lastTransitionTime: str | None = None


class JobStatus(_Read):
    """The part of a batch/v1 Job's ``status`` the rule's status is made from."""

    active: int | None = None
    startTime: str | None = None
    completionTime: str | None = None
    conditions: list[JobCondition] = []

    def done(self) -> dict[str, JobCondition]:
        """The Job's true conditions by type (``Complete``, ``Failed``)."""
        return {c.type: c for c in self.conditions if c.status == "True"}


class JobObject(_Read):
    """A Job of the rule's CronJob (a run)."""

    metadata: RunMetadata
    status: JobStatus = JobStatus()


_Run = TypeVar("_Run", WorkflowObject, JobObject)


def runs_of(kind: type[_Run], items: Iterable[object]) -> list[_Run]:
    """``items`` (JSON, as listed) read as ``kind``; one that is not (no name, say) is skipped."""
    found: list[_Run] = []
    for item in items:
        try:
            found.append(kind.model_validate(item))
        except ValidationError:
            continue
    return found
