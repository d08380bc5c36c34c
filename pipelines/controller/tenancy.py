"""The administrator's PRReconciliationLimits as the controller last listed them. Pure.

:class:`LimitsCache` holds every limits object of the cluster (kept up to date from a list and a
watch) and answers, for a namespace, which limits govern its rules (:class:`Governing`), with
:func:`jobs.rules.limits.limits_for`. An object the model refuses (which the CRD's schema should
have prevented) governs nothing it can be trusted for: the rules of the namespaces it names (of
every namespace, for ``default``) are refused until it is fixed, rather than run with wider
limits than the administrator meant. Each object is read once, where it is listed or watched,
into a :class:`LimitsObject`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from ai_operator.jobs.rules.limits import DEFAULT_NAME, KIND, LimitsSpec, limits_for
from ai_operator.pipelines.controller.checking import Governing


@dataclass(frozen=True)
class RefusedLimits:
    """A limits object the model refuses: the namespaces it names, and why."""

    namespaces: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class LimitsObject:
    """A PRReconciliationLimits as listed: its name and its spec, or why the model refuses it."""

    name: str
    spec: LimitsSpec | RefusedLimits

    @classmethod
    def read(cls, item: object) -> LimitsObject | None:
        """The object in the JSON the API server returned; None when it has no name."""
        document = item if isinstance(item, Mapping) else {}
        metadata = document.get("metadata")
        name = metadata.get("name") if isinstance(metadata, Mapping) else None
        if not name:
            return None
        raw = document.get("spec") or {}
        try:
            return cls(str(name), LimitsSpec.model_validate(raw))
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in error["loc"])
            listed = raw.get("namespaces") if isinstance(raw, Mapping) else None
            namespaces = tuple(str(n) for n in listed) if isinstance(listed, list) else ()
            return cls(str(name), RefusedLimits(namespaces, f"spec.{where}: {error['msg']}"))


def limits_objects(items: Iterable[object]) -> list[LimitsObject]:
    """The limits objects of a list the API server returned (those without a name skipped)."""
    return [found for found in map(LimitsObject.read, items) if found is not None]


class LimitsCache:
    """Every PRReconciliationLimits by name: its spec, or why the model refuses it."""

    def __init__(self) -> None:
        self._objects: dict[str, LimitsSpec | RefusedLimits] = {}

    def replace(self, items: Iterable[LimitsObject]) -> bool:
        """Take a full list; True when the limits changed."""
        before = dict(self._objects)
        self._objects = {item.name: item.spec for item in items}
        return self._objects != before

    def put(self, item: LimitsObject) -> bool:
        """Take an added or changed object; True when the limits changed."""
        before = self._objects.get(item.name)
        self._objects[item.name] = item.spec
        return item.spec != before

    def remove(self, name: str) -> bool:
        """Forget a deleted object; True when it was known."""
        return self._objects.pop(name, None) is not None

    def governing(self, namespace: str) -> Governing:
        """The limits the rules of ``namespace`` must stay within."""
        broken = sorted(
            (name, item)
            for name, item in self._objects.items()
            if isinstance(item, RefusedLimits) and namespace in item.namespaces
        )
        if broken:
            name, item = broken[0]
            return Governing(None, name, f"{KIND} {name} cannot be used: {item.reason}")
        valid = [
            (name, spec) for name, spec in self._objects.items() if isinstance(spec, LimitsSpec)
        ]
        try:
            spec = limits_for(namespace, valid)
        except ValueError as exc:
            return Governing(None, problem=f"{exc}; the administrator must remove one")
        naming = [name for name, found in valid if namespace in found.namespaces]
        if naming:
            return Governing(spec, naming[0])
        default = self._objects.get(DEFAULT_NAME)
        if isinstance(default, RefusedLimits):
            message = f"{KIND} {DEFAULT_NAME} cannot be used: {default.reason}"
            return Governing(None, DEFAULT_NAME, message)
        return Governing(spec, DEFAULT_NAME if default is not None else None)
