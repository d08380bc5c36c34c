"""The administrator's PRReconciliationLimits as the controller last listed them. Pure.

:class:`LimitsCache` holds every limits object of the cluster (kept up to date from a list and a
watch) and answers, for a namespace, which limits govern its rules (:class:`Governing`), with
:func:`jobs.rules.limits.limits_for`. An object the model refuses (which the CRD's schema should
have prevented) governs nothing it can be trusted for: the rules of the namespaces it names (of
every namespace, for ``default``) are refused until it is fixed, rather than run with wider
limits than the administrator meant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ai_operator.jobs.rules.limits import DEFAULT_NAME, KIND, LimitsSpec, limits_for
from ai_operator.pipelines.controller.checking import Governing


@dataclass(frozen=True)
class _Broken:
    namespaces: tuple[str, ...]
    reason: str


class LimitsCache:
    """Every PRReconciliationLimits by name: its spec, or why the model refuses it."""

    def __init__(self) -> None:
        self._objects: dict[str, LimitsSpec | _Broken] = {}

    def replace(self, items: Iterable[Mapping[str, Any]]) -> bool:
        """Take a full list; True when the limits changed."""
        before = dict(self._objects)
        self._objects = {}
        for item in items:
            self._store(item)
        return self._objects != before

    def put(self, item: Mapping[str, Any]) -> bool:
        """Take an added or changed object; True when the limits changed."""
        name = str((item.get("metadata") or {}).get("name") or "")
        before = self._objects.get(name)
        self._store(item)
        return self._objects.get(name) != before

    def remove(self, name: str) -> bool:
        """Forget a deleted object; True when it was known."""
        return self._objects.pop(name, None) is not None

    def governing(self, namespace: str) -> Governing:
        """The limits the rules of ``namespace`` must stay within."""
        broken = sorted(
            (name, item)
            for name, item in self._objects.items()
            if isinstance(item, _Broken) and namespace in item.namespaces
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
        if isinstance(default, _Broken):
            message = f"{KIND} {DEFAULT_NAME} cannot be used: {default.reason}"
            return Governing(None, DEFAULT_NAME, message)
        return Governing(spec, DEFAULT_NAME if default is not None else None)

    def _store(self, item: Mapping[str, Any]) -> None:
        name = str((item.get("metadata") or {}).get("name") or "")
        if not name:
            return
        raw = item.get("spec") or {}
        try:
            self._objects[name] = LimitsSpec.model_validate(raw)
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in error["loc"])
            listed = raw.get("namespaces") if isinstance(raw, Mapping) else None
            namespaces = tuple(str(n) for n in listed) if isinstance(listed, list) else ()
            self._objects[name] = _Broken(namespaces, f"spec.{where}: {error['msg']}")
