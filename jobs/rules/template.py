"""The language of a rule's templates: Jinja's sandbox, the variables, and untrusted text.

``instruction`` and ``argocdAppNamePattern`` are Jinja templates. They are parsed and rendered
only in :func:`make_environment`'s sandbox, with strict undefined variables; the variables a
template may use are :data:`VARIABLES` (the earlier design's names plus the other facts).
Text a pull request's author controls is :class:`Untrusted` and renders as a quoted JSON string.

Both ``ai-operator validate`` (which compiles templates, never renders them) and the prompt (which
renders them with a pull request's facts, :mod:`jobs.policy.prompt`) use this module, so a
template that validates is one the prompt can render. Pure: no I/O.

Errors: :class:`TemplateError` (a template that cannot be parsed or rendered; the message names the
template's field and the problem).
"""

from __future__ import annotations

import json
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

ARGOCD_UNKNOWN = "Unknown"


class TemplateError(Exception):
    """A template could not be rendered; the message names the template and the problem."""


class Untrusted(str):
    """Text a pull request's author controls; renders quoted inside instructions."""

    __slots__ = ()


class TextList(list[Any]):
    """A list that renders as ``a, b`` in templates (the seed's templates print lists directly)."""

    def __str__(self) -> str:
        return ", ".join(str(finalize(item)) for item in self) if self else "none"


def finalize(value: object) -> object:
    """What a template prints for ``value``: untrusted text as a quoted JSON string."""
    if isinstance(value, Untrusted):
        return json.dumps(str(value), ensure_ascii=False)
    return value


VARIABLES = (
    "pr.number",
    "pr.title",
    "pr.body",
    "pr.author",
    "pr.labels",
    "pr.ciStatus",
    "pr.checks",
    "pr.mergeable",
    "pr.mergeableState",
    "pr.mergeStateStatus",
    "pr.reviewDecision",
    "pr.reviews",
    "pr.isDraft",
    "pr.baseBranch",
    "pr.headBranch",
    "pr.headOid",
    "pr.additions",
    "pr.deletions",
    "pr.changedFiles",
    "pr.createdAt",
    "pr.updatedAt",
    "pr.url",
    "repository",
    "repositoryFullName",
    "owner",
    "environment",
    "argocd.health",
    "argocd.sync",
    "argocd.app",
)


def make_environment(*, quote_untrusted: bool = True) -> SandboxedEnvironment:
    """The sandbox every rule template is parsed and rendered in."""
    return SandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        finalize=finalize if quote_untrusted else None,
        autoescape=False,
        keep_trailing_newline=True,
    )


def render_template(
    source: str, variables: dict[str, Any], what: str, *, quote_untrusted: bool = True
) -> str:
    """Render one rule template; any failure is a :class:`TemplateError` naming ``what``."""
    env = make_environment(quote_untrusted=quote_untrusted)
    try:
        return env.from_string(source).render(variables)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{what}: line {exc.lineno}: {exc.message}") from exc
    except jinja2.TemplateError as exc:
        raise TemplateError(f"{what}: {exc}") from exc
