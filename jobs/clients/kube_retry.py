"""When a Kubernetes API request is tried again, and after how long: by verb. Pure.

No I/O, no clock, no randomness of its own (the jitter is passed in), so that any client, the
controller's asynchronous one or a synchronous one, can follow the same table.

What each verb tries again (:data:`POLICIES`):

=========  ======================================  ==========================================
verb       answers tried again                     no answer (timeout, connection lost)
=========  ======================================  ==========================================
get, list  429, 500, 502, 503, 504                 tried again (reading changes nothing)
watch      429, 500, 502, 503, 504                 reconnected with capped backoff
apply      409, 429, 500, 502, 503, 504            tried again (server-side apply of the same
patch                                              document twice leaves what once does)
update     429, 500, 502, 503, 504                 tried again; 409 is the answer (the
                                                   object changed since it was read)
delete     409, 429, 500, 502, 503, 504            tried again (404 afterwards: already gone)
create     429 (never processed); 503 only with    tried again only when the request never
           ``Retry-After``                         left (the connection could not be opened)
create of  429, 500, 502, 503, 504                 tried again: a create that was applied
a named                                            answers 409 the second time, read as
object                                             "exists" (:attr:`VerbPolicy.exists_ok`)
=========  ======================================  ==========================================

The pipeline steps' writes follow :data:`VERSIONED_WRITE`: their 409 is an answer they read
("another writer was first"), so a PUT or POST is repeated only when it cannot have been
applied (429, 503 with ``Retry-After``, a connection that could not be opened).

A create whose object has a name chosen by the caller (not ``generateName``) is
:data:`IDEMPOTENT_CREATE`: repeating it can never make a second object. A create with
``generateName`` is not: a timeout after sending may have created the object, and a second
request would create another, so it is not repeated.

The waits (:class:`Backoff`) double from ``first`` up to ``cap`` and are shortened by up to half
at random (jitter), so that many clients that failed together do not come back together; a
``Retry-After`` answer is honoured (up to the cap).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

TRANSIENT = frozenset({429, 500, 502, 503, 504})
"""Answers that say "not now": the API server is overloaded, restarting or unreachable."""
CONFLICT = 409
JITTER = 0.5
"""The largest share of a wait that jitter may take off."""


class Verb(StrEnum):
    """What a request does, as RBAC names it (``apply`` is a ``patch`` to RBAC)."""

    GET = "get"
    LIST = "list"
    WATCH = "watch"
    CREATE = "create"
    APPLY = "apply"
    PATCH = "patch"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True, kw_only=True)
class VerbPolicy:
    """Which failures of one verb are tried again."""

    retried: frozenset[int]
    """HTTP statuses answered before (or without) the request taking effect, or harmless to
    repeat."""
    retried_with_retry_after: frozenset[int] = frozenset()
    """Statuses tried again only when the answer carries ``Retry-After`` (the server says it
    did not process the request and when to come back)."""
    after_sending: bool = True
    """Whether a request that may have reached the server (a timeout, a connection lost
    mid-way) is tried again: only when doing it twice leaves what doing it once does."""
    exists_ok: bool = False
    """409 ``AlreadyExists`` is the answer "the object exists", not an error (a create)."""


_READ = VerbPolicy(retried=TRANSIENT)

POLICIES: Mapping[Verb, VerbPolicy] = {
    Verb.GET: _READ,
    Verb.LIST: _READ,
    Verb.WATCH: _READ,
    Verb.APPLY: VerbPolicy(retried=TRANSIENT | {CONFLICT}),
    Verb.PATCH: VerbPolicy(retried=TRANSIENT | {CONFLICT}),
    Verb.UPDATE: VerbPolicy(retried=TRANSIENT),
    Verb.DELETE: VerbPolicy(retried=TRANSIENT | {CONFLICT}),
    Verb.CREATE: VerbPolicy(
        retried=frozenset({429}),
        retried_with_retry_after=frozenset({503}),
        after_sending=False,
        exists_ok=True,
    ),
}

IDEMPOTENT_CREATE = VerbPolicy(retried=TRANSIENT, exists_ok=True)
"""A create of an object named by the caller: repeating it cannot make a second object."""


VERSIONED_WRITE = VerbPolicy(
    retried=frozenset({429}), retried_with_retry_after=frozenset({503}), after_sending=False
)
"""A write whose 409 is the caller's answer (a step's PUT with a ``resourceVersion``, a POST of a
named object that another writer may have made first): repeated only when it cannot have been
applied, so that a conflict always means that someone else wrote, never this request twice."""


def policy_for(verb: Verb, *, named: bool = False) -> VerbPolicy:
    """The policy of ``verb``; a create is idempotent when its object is ``named``."""
    if verb is Verb.CREATE and named:
        return IDEMPOTENT_CREATE
    return POLICIES[verb]


def retried_answer(policy: VerbPolicy, status: int, retry_after: str | None) -> bool:
    """Whether an answer with ``status`` (and maybe ``Retry-After``) is tried again."""
    if status in policy.retried:
        return True
    return (
        status in policy.retried_with_retry_after and retry_after_seconds(retry_after) is not None
    )


def retried_failure(policy: VerbPolicy, *, sent: bool) -> bool:
    """Whether a request that got no answer is tried again (``sent``: it may have arrived)."""
    return policy.after_sending or not sent


def retry_after_seconds(header: str | None) -> float | None:
    """A ``Retry-After`` header's delay in seconds (the API server sends whole seconds)."""
    if header is None or not header.strip().isdigit():
        return None
    return float(header.strip())


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """Capped exponential backoff with jitter: ``first``, doubling, at most ``cap`` seconds."""

    first: float = 0.5
    cap: float = 15.0

    def base(self, attempt: int) -> float:
        """The wait after failure number ``attempt`` (0 for the first), before jitter."""
        return float(min(self.first * 2 ** max(0, attempt), self.cap))

    def delay(self, attempt: int, jitter: float, retry_after: str | None = None) -> float:
        """The wait after failure ``attempt``; ``jitter`` in [0, 1) takes up to half off.

        ``Retry-After`` (whole seconds), when given, is the wait, up to the cap.
        """
        asked = retry_after_seconds(retry_after)
        if asked is not None:
            return min(asked, self.cap)
        share = min(max(jitter, 0.0), 1.0)
        return self.base(attempt) * (1.0 - JITTER * share)

    def schedule(self, failures: int, jitter: float = 0.0) -> list[float]:
        """The waits after ``failures`` failures in a row (for documentation and tests)."""
        return [self.delay(attempt, jitter) for attempt in range(failures)]
