"""How a selector's values are read: title patterns, logins, and values a search can carry.

One place decides these spellings, so that ``validate``, the search and the re-check of the
selector agree: a value that validates is one every pass can search for and match.

- Title patterns run on RE2 (``google-re2``), a linear-time engine: no pattern can backtrack
  catastrophically on a hostile title. RE2 has no lookaround and no backreferences; a pattern it
  cannot compile is refused with its reason.
- A login is ``name`` (a person), or a bot as ``name[bot]`` (GitHub's UI) or ``app/name``
  (GitHub's search); the two bot forms are the same bot. Logins compare case-insensitively.
- A search value (a label, a base branch) cannot contain a double quote, a line break or be
  blank: GitHub's search syntax has no way to express it.

Pure: no I/O. Errors are ``ValueError`` with a message for people.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import re2

BOT_SUFFIX = "[bot]"
APP_PREFIX = "app/"
_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")


@functools.lru_cache(maxsize=128)
def compile_title_pattern(pattern: str) -> Any:
    """``pattern`` compiled by RE2; ValueError naming what RE2 refused."""
    options = re2.Options()
    options.log_errors = False  # the reason is in the exception; RE2 would also print it
    try:
        return re2.compile(pattern, options=options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        text = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        raise ValueError(
            f"not a valid regular expression for the linear-time engine RE2: {text} "
            "(RE2 has no lookahead, lookbehind or backreferences)"
        ) from exc


def title_matches(pattern: str, title: str) -> bool:
    """Whether ``pattern`` matches at the start of ``title``."""
    return compile_title_pattern(pattern).match(title) is not None


@dataclass(frozen=True)
class Login:
    """A GitHub account as a selector names it: its name and whether it is a bot (an app)."""

    name: str
    is_bot: bool

    @property
    def canonical(self) -> str:
        """One spelling: ``dependabot[bot]`` for a bot, the lower-case name for a person."""
        name = self.name.casefold()
        return f"{name}{BOT_SUFFIX}" if self.is_bot else name

    @property
    def search_term(self) -> str:
        """How GitHub's search names the account: ``app/dependabot`` for a bot."""
        return f"{APP_PREFIX}{self.name}" if self.is_bot else self.name


def parse_login(value: str) -> Login:
    """``value`` in one of its documented forms; ValueError for anything else."""
    text = value.strip()
    is_bot = text.endswith(BOT_SUFFIX) or text.casefold().startswith(APP_PREFIX)
    name = text.removesuffix(BOT_SUFFIX) if text.endswith(BOT_SUFFIX) else text
    if name.casefold().startswith(APP_PREFIX):
        name = name[len(APP_PREFIX) :]
    if not _NAME_RE.match(name):
        raise ValueError(
            f"not a GitHub login: {value!r} (a person as 'octocat', a bot as 'dependabot[bot]' "
            "or 'app/dependabot')"
        )
    return Login(name, is_bot)


def canonical_login(value: str) -> str:
    """The one spelling of a login, also for a name that is not a valid login (kept as is)."""
    try:
        return parse_login(value).canonical
    except ValueError:
        return value.strip().casefold()


def search_value_problem(value: str) -> str | None:
    """Why GitHub's search cannot carry ``value`` (a label, a branch); None when it can."""
    if not value.strip():
        return "is blank"
    if '"' in value:
        return "contains a double quote, which GitHub's search cannot express"
    if any(ch in value for ch in "\r\n"):
        return "contains a line break, which GitHub's search cannot express"
    return None
