"""A GitHub delivery through the installation's EventSource and a rule's Sensor, as Argo Events does.

Tests use it to deliver a recorded webhook to a compiled Sensor and get the Workflows its
triggers would create. It interprets exactly what :mod:`pipelines.events` compiles, read from
Argo Events v1.9.11's code, and raises :class:`UnsupportedFeature` for anything else:

- the EventSource's GitHub webhook (:func:`receive`): the body is refused unless its
  ``X-Hub-Signature-256`` is the HMAC-SHA256 of the body with the webhook secret (go-github's
  ``ValidatePayload``, which the EventSource calls); the event's data is
  ``{"headers": <header name -> list of values>, "body": <the JSON body>}``;
- dependencies' data filters (``filterData``): ``path`` read as gjson does (keys, array
  indexes, ``#`` and ``#.key``), ``type`` string (each value a regular expression, matched
  anywhere, as Go's ``regexp.Match``), number or bool, ``comparator`` ``=``/``!=`` (and the
  number comparisons); a path that does not exist fails the filter; filters are ANDed
  (``dataLogicalOperator`` is not interpreted);
- triggers whose ``conditions`` name one dependency, ``k8s`` with ``operation: create`` and an
  inline ``source.resource``; ``parameters`` (``ApplyParams``) with ``dataKey`` (a JSON block
  is set as its text) or ``dataTemplate`` (a Go template over ``{"Input": data}``, with the few
  sprig functions the compiler uses: ``now``, ``unixEpoch``, ``div``, ``mul``, ``add1``,
  ``int``, ``trunc``; a template that fails falls back to ``dataKey``), set at ``dest``
  (``sjson``: dotted keys, numeric array indexes) as a string;
- the API server (:class:`Cluster`): a create whose ``metadata.name`` exists fails with
  AlreadyExists, as Kubernetes refuses it; ``generateName`` gets a suffix.

Time is ``now`` (epoch seconds), passed in: sprig's ``now`` reads it.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

_MISSING = object()


class UnsupportedFeature(Exception):
    """The Sensor uses something this emulation does not interpret."""


class SignatureRefused(Exception):
    """The delivery's X-Hub-Signature-256 is missing or wrong: the EventSource drops it."""


class TemplateError(Exception):
    """A Go template failed (Argo Events then falls back to ``dataKey``, else errors)."""


def sign(secret: str, body: bytes) -> str:
    """GitHub's ``X-Hub-Signature-256`` of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def receive(secret: str, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """The event data the EventSource puts on the bus for one delivery (signature checked)."""
    canonical = {name.title(): value for name, value in headers.items()}
    signature = canonical.get("X-Hub-Signature-256", "")
    if not hmac.compare_digest(signature, sign(secret, body)):
        raise SignatureRefused("X-Hub-Signature-256 does not match the body")
    return {"headers": {k: [v] for k, v in canonical.items()}, "body": json.loads(body)}


# --- gjson ------------------------------------------------------------------------------------


def gjson_get(data: Any, path: str) -> Any:
    """The value at ``path`` (gjson syntax, the subset above); ``_MISSING`` when absent."""
    if any(c in path for c in "\\*?|@"):
        raise UnsupportedFeature(f"gjson path {path!r}")
    return _walk(data, path.split("."))


def _walk(value: Any, keys: list[str]) -> Any:
    if not keys:
        return value
    key, rest = keys[0], keys[1:]
    if isinstance(value, list):
        if key == "#":
            if not rest:
                return len(value)
            found = [_walk(item, rest) for item in value]
            return [item for item in found if item is not _MISSING]
        if key.isdigit() and int(key) < len(value):
            return _walk(value[int(key)], rest)
        return _MISSING
    if isinstance(value, dict) and key in value:
        return _walk(value[key], rest)
    return _MISSING


def gjson_string(value: Any) -> str:
    """gjson's ``Result.String()``: a string as is, a block as its JSON text."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int | float):
        return _go_number(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _go_number(value: float) -> str:
    if isinstance(value, int) or value.is_integer():
        if abs(value) >= 1e6 and not isinstance(value, int):
            raise UnsupportedFeature(f"printing {value!r} as Go does (exponent form)")
        return str(int(value))
    return repr(value)


# --- filters ---------------------------------------------------------------------------------


def passes(dependency: Mapping[str, Any], data: Mapping[str, Any]) -> bool:
    """Whether the event ``data`` passes the dependency's filters (``filterData``, AND)."""
    filters = dependency.get("filters") or {}
    for key in filters:
        if key != "data":
            raise UnsupportedFeature(f"filters.{key}")
    if dependency.get("filtersLogicalOperator") not in (None, "and"):
        raise UnsupportedFeature("filtersLogicalOperator")
    return all(_data_filter(f, data) for f in filters.get("data", []))


def _data_filter(found: Mapping[str, Any], data: Mapping[str, Any]) -> bool:
    unknown = set(found) - {"path", "type", "value", "comparator"}
    if unknown:
        raise UnsupportedFeature(f"data filter fields {sorted(unknown)}")
    value = gjson_get(data, str(found["path"]))
    if value is _MISSING or not found["value"]:
        return False  # "path does not exist" / "no values specified": the filter errors
    comparator = found.get("comparator", "")
    kind = found["type"]
    for wanted in found["value"]:
        if kind == "string":
            match = re.search(wanted, gjson_string(value)) is not None
            if (match and comparator in ("", "=")) or (not match and comparator == "!="):
                return True
        elif kind == "number":
            if _compare(float(value), comparator, float(wanted)):
                return True
        elif kind == "bool":
            if (wanted.lower() in ("1", "t", "true")) == bool(value):
                return True
        else:
            raise UnsupportedFeature(f"data filter type {kind!r}")
    return False


def _compare(have: float, comparator: str, wanted: float) -> bool:
    table = {
        "": have == wanted, "=": have == wanted, "!=": have != wanted,
        ">": have > wanted, ">=": have >= wanted, "<": have < wanted, "<=": have <= wanted,
    }  # fmt: skip
    return table[comparator]


# --- Go templates (the subset the compiler writes) ----------------------------------------------

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.DOTALL)
_TOKEN = re.compile(r'\s*(\(|\)|\||"(?:[^"\\]|\\.)*"|[^\s()|]+)')


def render(template: str, data: Any, now: float) -> str:
    """``template`` executed over ``{"Input": data}``; TemplateError when Go's would fail."""
    out, last = [], 0
    for action in _ACTION.finditer(template):
        out.append(template[last : action.start()])
        out.append(_print(_pipeline(_tokens(action.group(1)), {"Input": data}, now)))
        last = action.end()
    out.append(template[last:])
    text = "".join(out)
    if text in ("", "<no value>"):
        raise TemplateError("template evaluated to empty string or no value")
    return text


def _tokens(text: str) -> list[str]:
    tokens = _TOKEN.findall(text)
    if "".join(tokens).replace(" ", "") != text.replace(" ", ""):
        raise UnsupportedFeature(f"template action {text!r}")
    return tokens


def _pipeline(tokens: list[str], dot: Any, now: float) -> Any:
    commands: list[list[str]] = []
    current: list[str] = []
    depth = 0
    for token in tokens:
        depth += token == "("
        depth -= token == ")"
        if token == "|" and depth == 0:
            commands.append(current)
            current = []
        else:
            current.append(token)
    commands.append(current)
    result: Any = _MISSING
    for command in commands:
        result = _command(command, dot, now, result)
    return result


def _command(tokens: list[str], dot: Any, now: float, piped: Any) -> Any:
    operands = list(_operands(tokens, dot, now))
    if piped is not _MISSING:
        operands.append(piped)
    head, *args = operands
    if not isinstance(head, _Function):
        if args:
            raise TemplateError("can't give argument to non-function")
        return head
    return head(now, *args)


@dataclass(frozen=True)
class _Function:
    name: str

    def __call__(self, now: float, *args: Any) -> Any:
        functions: dict[str, Callable[..., Any]] = {
            "now": lambda: now,
            "unixEpoch": lambda t: str(int(t)),
            "div": lambda a, b: _int(a) // _int(b),
            "mul": lambda a, b: _int(a) * _int(b),
            "add1": lambda a: _int(a) + 1,
            "int": _int,
            "trunc": lambda n, s: str(s)[: _int(n)],
        }
        if self.name not in functions:
            raise UnsupportedFeature(f"template function {self.name!r}")
        try:
            return functions[self.name](*args)
        except TypeError as exc:
            raise TemplateError(f"{self.name}: wrong number of arguments") from exc


def _int(value: Any) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return 0  # sprig's toInt64: anything it cannot read is 0


def _operands(tokens: list[str], dot: Any, now: float) -> Iterator[Any]:
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token == "(":
            depth, end = 1, index + 1
            while depth:
                depth += tokens[end] == "("
                depth -= tokens[end] == ")"
                end += 1
            yield _pipeline(tokens[index + 1 : end - 1], dot, now)
            index = end
            continue
        if token.startswith("."):
            yield _field(dot, token)
        elif token.startswith('"'):
            yield json.loads(token)
        elif re.fullmatch(r"-?\d+", token):
            yield int(token)
        else:
            yield _Function(token)
        index += 1


def _field(dot: Any, chain: str) -> Any:
    value = dot
    for key in chain.strip(".").split("."):
        if value is None:
            raise TemplateError(f"nil pointer evaluating {chain}")
        if not isinstance(value, dict):
            raise TemplateError(f"can't evaluate field {key}")
        value = value.get(key)
    return value


def _print(value: Any) -> str:
    if value is None:
        return "<no value>"
    return gjson_string(value)


# --- triggers and the API server -----------------------------------------------------------------


@dataclass
class Cluster:
    """The API server's Workflows: a second create of one name is refused (AlreadyExists)."""

    workflows: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    _suffix: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def create(self, document: dict[str, Any]) -> bool:
        """Store ``document``; False when its name is taken."""
        metadata = document["metadata"]
        if "name" not in metadata:
            metadata["name"] = f"{metadata.pop('generateName')}{next(self._suffix):05d}"
        name = metadata["name"]
        if name in self.workflows:
            self.refused.append(name)
            return False
        self.workflows[name] = document
        return True


def deliver(
    sensor: Mapping[str, Any], data: Mapping[str, Any], cluster: Cluster, now: float
) -> list[dict[str, Any]]:
    """Run the Sensor on one event; the Workflows its triggers created (refused ones left out)."""
    spec = sensor["spec"]
    passed = {d["name"] for d in spec["dependencies"] if passes(d, data)}
    created = []
    for trigger in spec["triggers"]:
        template = trigger["template"]
        if template.get("conditions") not in passed:
            continue
        k8s = template.get("k8s")
        if k8s is None or k8s.get("operation") != "create":
            raise UnsupportedFeature("only k8s create triggers are interpreted")
        resource = copy.deepcopy(k8s["source"]["resource"])
        for parameter in k8s.get("parameters", []):
            _set(resource, parameter["dest"], _resolve(parameter["src"], data, now))
        if cluster.create(resource):
            created.append(resource)
    return created


def _resolve(src: Mapping[str, Any], data: Any, now: float) -> str:
    unknown = set(src) - {"dependencyName", "dataKey", "dataTemplate", "value"}
    if unknown:
        raise UnsupportedFeature(f"parameter source fields {sorted(unknown)}")
    if "dataTemplate" in src:
        try:
            return render(src["dataTemplate"], data, now)
        except TemplateError:
            pass  # Argo Events falls back to the key, then to the default value
    if "dataKey" in src:
        value = gjson_get(data, src["dataKey"])
        if value is not _MISSING:
            return gjson_string(value)
    if "value" in src:
        return str(src["value"])
    raise TemplateError(f"unable to resolve the parameter {src}")


def _set(document: Any, dest: str, value: str) -> None:
    keys = dest.split(".")
    target = document
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target.setdefault(key, {})
    last = keys[-1]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
