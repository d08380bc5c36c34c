"""The language of a rule's templates: Jinja's sandbox, the variables, and untrusted text.

``instruction`` and ``argocdAppNamePattern`` are Jinja templates. They are parsed and rendered
only in :func:`make_environment`'s sandbox, with strict undefined variables; the variables a
template may use are :data:`VARIABLES` (the earlier design's names plus the other facts), of the
types in :data:`VARIABLE_TYPES`.

Text a pull request's author controls is :class:`Untrusted`, and so is every value the template
derives from it, whatever it does: filters (``|upper``, ``|join``, ``|replace``, ...), slices,
methods (``.split()``), concatenation (``~``, ``+``, ``%``), iteration, macros and ``{% set %}`` or
``{% filter %}`` blocks. Printed in an instruction, untrusted text renders as a quoted JSON string
(text that was already quoted, :class:`Quoted`, is printed as it is), so no pull request can start
a line of its own in the instruction. Only numbers and booleans (a length, a comparison) leave
untrusted text as plain values.

Both ``ai-operator validate`` (which compiles templates, never renders them) and the prompt (which
renders them with a pull request's facts, :mod:`jobs.policy.prompt`) use this module, so a
template that validates is one the prompt can render. Pure: no I/O.

Errors: :class:`TemplateError` (a template that cannot be parsed or rendered; the message names the
template's field and the problem).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

ARGOCD_UNKNOWN = "Unknown"
_MAX_DEPTH = 6  # how deep containers are searched for untrusted text

MAX_TEMPLATE_LENGTH = 16384
"""Characters of one template (the rule model's bound on ``instruction``)."""
MAX_NESTING = 20
"""Blocks (``{% if %}``, ``{% for %}``, ...) and brackets nested in one another, at most."""
MAX_RANGE = 1000
"""Items of one ``range(...)`` in a template (Jinja's own sandbox allows 100,000)."""
MAX_SEQUENCE = 100_000
"""Characters or items a ``*`` or ``**`` in a template may produce."""
_BLOCK_TAGS = frozenset(
    {"if", "for", "macro", "call", "filter", "with", "block", "autoescape", "trans", "set"}
)
_OPENING = frozenset("([{")
_CLOSING = frozenset(")]}")


class TemplateError(Exception):
    """A template could not be rendered; the message names the template and the problem."""


def size_problem(source: str) -> str | None:
    """Why ``source`` is too large or too deeply nested to check or render; None when it is not.

    Runs on Jinja's lexer only (linear, no recursion), before anything parses the template:
    Jinja's parser and Python's compiler recurse once per nesting level.
    """
    if len(source) > MAX_TEMPLATE_LENGTH:
        return (
            f"the template has {len(source)} characters; at most {MAX_TEMPLATE_LENGTH} are allowed"
        )
    depth = deepest = 0
    try:
        lexed = make_environment(quote_untrusted=False).lex(source)
        tokens = [token for token in lexed if token[1] != "whitespace"]
    except jinja2.TemplateSyntaxError:
        return None  # parsing reports it, with its line
    for index, (line, kind, value) in enumerate(tokens):
        if kind == "name" and index > 0 and tokens[index - 1][1] == "block_begin":
            if value in _BLOCK_TAGS and not (value == "set" and _is_assignment(tokens, index)):
                depth += 1
            elif value.startswith("end"):
                depth -= 1
        elif kind == "operator" and value in _OPENING:
            depth += 1
        elif kind == "operator" and value in _CLOSING:
            depth -= 1
        deepest = max(deepest, depth)
        if deepest > MAX_NESTING:
            return (
                f"line {line} of the template: blocks and brackets are nested more than "
                f"{MAX_NESTING} deep"
            )
    return None


def _is_assignment(tokens: list[tuple[int, str, str]], start: int) -> bool:
    """Whether the ``{% set ... %}`` at ``start`` assigns in place (``=``), opening no block."""
    for _, kind, value in tokens[start:]:
        if kind == "block_end":
            return False
        if kind == "assign" or (kind == "operator" and value == "="):
            return True
    return False


def bounded_range(*args: int) -> range:
    """``range`` for templates: at most :data:`MAX_RANGE` items."""
    found = range(*args)
    if len(found) > MAX_RANGE:
        raise OverflowError(f"range of {len(found)} items: at most {MAX_RANGE} are allowed")
    return found


def _bounded_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse ``*`` and ``**`` whose result would be huge, before computing it."""
    if operator == "**" and isinstance(right, int | float) and abs(right) > 64:
        raise OverflowError(f"exponent {right} is too large (at most 64)")
    if operator == "*":
        sized = [v for v in (left, right) if isinstance(v, str | list | tuple)]
        count = next((v for v in (left, right) if isinstance(v, int)), None)
        if sized and count is not None and len(sized[0]) * count > MAX_SEQUENCE:
            raise OverflowError(f"repetition of more than {MAX_SEQUENCE} items")


class Untrusted(str):
    """Text a pull request's author controls (or derived from it); renders quoted."""

    __slots__ = ()

    def __getitem__(self, key: Any) -> Untrusted:
        # Slices bypass the sandbox (``pr.body[:50]``): the text itself keeps its taint.
        return Untrusted(str.__getitem__(self, key))

    def __iter__(self) -> Iterator[Untrusted]:
        return (Untrusted(char) for char in str.__iter__(self))


class Quoted(Untrusted):
    """Untrusted text already rendered as a quoted string: printed as it is, never re-quoted.

    Anything done to it (a filter, a slice) gives plain :class:`Untrusted` text again.
    """

    __slots__ = ()

    def __str__(self) -> str:
        # Keeps the mark through Jinja's ``str(finalize(value))`` into block buffers.
        return self


class UntrustedRecord:
    """Base of the template's records that hold untrusted text (a review, a check).

    Its ``__str__`` must quote the untrusted fields; it is then printed as it renders.
    """


class TextList(list[Any]):
    """A list that renders as ``a, b`` in templates (the seed's templates print lists directly)."""

    def __str__(self) -> str:
        return ", ".join(str(finalize(item)) for item in self) if self else "none"


class _TaintedIterator(Iterator[Any]):
    """A lazy result (``|map``, ``|select``) over untrusted text: every item stays untrusted."""

    def __init__(self, inner: Iterator[Any]) -> None:
        self._inner = inner

    def __next__(self) -> Any:
        return taint(next(self._inner))


def is_tainted(value: object, depth: int = 0) -> bool:
    """Whether ``value`` is, or holds, untrusted text."""
    if isinstance(value, Untrusted | UntrustedRecord | _TaintedIterator):
        return True
    if isinstance(value, str | bytes | int | float | bool) or value is None:
        return False
    if depth >= _MAX_DEPTH:
        return False
    if isinstance(value, Mapping):
        return any(is_tainted(k, depth + 1) or is_tainted(v, depth + 1) for k, v in value.items())
    if isinstance(value, Collection) and not isinstance(value, Context):
        return any(is_tainted(item, depth + 1) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(is_tainted(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value))
    return False


def taint(value: Any) -> Any:
    """``value`` as the result of an operation on untrusted text: its text is untrusted too."""
    if isinstance(value, Untrusted):
        return value
    if isinstance(value, str):
        return Untrusted(value)
    if isinstance(value, bytes | int | float | bool | Mapping) or value is None:
        return value
    if isinstance(value, Iterator):
        return _TaintedIterator(value)
    if isinstance(value, Collection):
        return TextList(taint(item) for item in value)
    return value


def finalize(value: object) -> object:
    """What a template prints for ``value``: untrusted text as a quoted JSON string."""
    if isinstance(value, Quoted):
        return value
    if isinstance(value, Untrusted):
        return Quoted(json.dumps(str(value), ensure_ascii=False))
    if isinstance(value, TextList | UntrustedRecord):
        # Their ``__str__`` quotes each untrusted item; mark the result so it stays tracked.
        return Quoted(str(value)) if is_tainted(value) else value
    if not isinstance(value, str) and is_tainted(value):
        return Quoted(json.dumps(value, default=_plain_text, ensure_ascii=False))
    return value


def _plain_text(value: object) -> object:
    if isinstance(value, Iterator):
        return list(value)
    return str(value)


VARIABLE_TYPES: dict[str, type] = {
    "pr.number": int,
    "pr.title": str,
    "pr.body": str,
    "pr.author": str,
    "pr.labels": list,
    "pr.ciStatus": str,
    "pr.checks": list,
    "pr.mergeable": bool,
    "pr.mergeableState": str,
    "pr.mergeStateStatus": str,
    "pr.reviewDecision": str,
    "pr.reviews": list,
    "pr.isDraft": bool,
    "pr.baseBranch": str,
    "pr.headBranch": str,
    "pr.headOid": str,
    "pr.additions": int,
    "pr.deletions": int,
    "pr.changedFiles": int,
    "pr.createdAt": str,
    "pr.updatedAt": str,
    "pr.url": str,
    "repository": str,
    "repositoryFullName": str,
    "owner": str,
    "environment": str,
    "argocd.health": str,
    "argocd.sync": str,
    "argocd.app": str,
}
"""Every variable a template may use, and the type of its value."""

VARIABLES = tuple(VARIABLE_TYPES)


class _TaintingCodeGenerator(CodeGenerator):
    """Jinja's code generator, with the two outputs that would lose untrusted text's mark.

    ``a ~ b`` joins through the environment (which keeps the mark), and a ``{% filter %}``
    block is printed through ``finalize`` like any ``{{ ... }}``.
    """

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.tainted_join((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def visit_FilterBlock(self, node: nodes.FilterBlock, frame: Frame) -> None:
        filter_frame = frame.inner()
        filter_frame.symbols.analyze_node(node)
        self.enter_frame(filter_frame)
        self.buffer(filter_frame)
        self.blockvisit(node.body, filter_frame)
        self.start_write(frame, node)
        self.write("environment.finalize(")
        self.visit_Filter(node.filter, filter_frame)
        self.write(")")
        self.end_write(frame)
        self.leave_frame(filter_frame)


class QuotingSandbox(SandboxedEnvironment):
    """Jinja's sandbox in which whatever is derived from untrusted text stays untrusted."""

    code_generator_class = _TaintingCodeGenerator
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=finalize, **options)
        self.filters = {name: _tainting(f) for name, f in self.filters.items()}

    def concat(self, parts: Iterable[str]) -> str:
        """Join rendered pieces (a block's body); quoted pieces keep the result marked."""
        pieces = list(parts)
        text = "".join(pieces)
        return Quoted(text) if any(isinstance(p, Untrusted) for p in pieces) else text

    def tainted_join(self, parts: Iterable[Any]) -> str:
        """``a ~ b``: untrusted if any part is."""
        pieces = list(parts)
        text = "".join(str(piece) for piece in pieces)
        return Untrusted(text) if any(is_tainted(p) for p in pieces) else text

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """``+``, ``%``, ...: untrusted if an operand is; huge ``*`` and ``**`` are refused."""
        _bounded_binop(operator, left, right)
        result = super().call_binop(context, operator, left, right)
        return taint(result) if is_tainted(left) or is_tainted(right) else result

    def call(
        __self,  # Jinja's own signature: callers may pass an argument named ``self``
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """A method or function call: untrusted if its object or an argument is."""
        result = super().call(__context, __obj, *args, **kwargs)
        inputs = [getattr(__obj, "__self__", None), *args, *kwargs.values()]
        return taint(result) if any(is_tainted(value) for value in inputs) else result


def _tainting(function: Callable[..., Any]) -> Callable[..., Any]:
    """A filter whose result is untrusted when any of its inputs is."""
    passes_first = getattr(function, "jinja_pass_arg", None) is not None

    @functools.wraps(function)
    def filtered(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        inputs = [*args[1 if passes_first else 0 :], *kwargs.values()]
        return taint(result) if any(is_tainted(value) for value in inputs) else result

    return filtered


def make_environment(*, quote_untrusted: bool = True) -> SandboxedEnvironment:
    """The sandbox every rule template is parsed and rendered in."""
    options: dict[str, Any] = {
        "undefined": jinja2.StrictUndefined,
        "autoescape": False,
        "keep_trailing_newline": True,
    }
    env = QuotingSandbox(**options) if quote_untrusted else SandboxedEnvironment(**options)
    env.globals["range"] = bounded_range
    return env


def render_template(
    source: str, variables: dict[str, Any], what: str, *, quote_untrusted: bool = True
) -> str:
    """Render one rule template; any failure is a :class:`TemplateError` naming ``what``.

    Whatever the template does fails here, never later: a division by zero on a pull request's
    facts or a method of a value that raises are the template's errors too.
    """
    env = make_environment(quote_untrusted=quote_untrusted)
    problem = size_problem(source)
    if problem is not None:
        raise TemplateError(f"{what}: {problem}")
    try:
        rendered = env.from_string(source).render(variables)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{what}: line {exc.lineno}: {exc.message}") from exc
    except jinja2.TemplateError as exc:
        raise TemplateError(f"{what}: {exc}") from exc
    except Exception as exc:  # any failure of a template is the template's error
        raise TemplateError(f"{what}: {type(exc).__name__}: {exc}") from exc
    return "".join(("", rendered))  # a plain str, whatever marks its pieces carried
