"""Whether a write may happen now: the pause, GitHub's ``retry-after``, the pass's write budget.

One :class:`WriteGate` per pass (``run``) or per act pod (the pipeline, holding the share of the
budget fetch allotted it: :func:`jobs.policy.pacing.allot`). :mod:`jobs.reconcile.apply` asks it
before carrying out a plan, and tells it when GitHub answered with a rate limit the client did
not wait out; the decision itself is :func:`jobs.policy.pacing.admit`'s. A plan the gate holds
back is deferred whole, and acted on again in a later pass. The gate writes nothing itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from ai_operator.jobs.policy.pacing import Deferral, Ledger, WriteBudget, admit
from ai_operator.jobs.policy.plan import Operation


class WriteGate:
    """The writes one pass (or one act pod) may still make."""

    def __init__(
        self,
        budget: WriteBudget,
        *,
        paused: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ledger = Ledger.of(budget)
        self._paused = paused
        self._clock = clock
        self._hold_until: float | None = None
        self._lock = threading.Lock()

    @property
    def paused(self) -> bool:
        """Whether every write is held back."""
        return self._paused

    def admit(self, operations: Sequence[Operation]) -> Deferral | None:
        """None when the plan may be carried out now (its writes are then spent), else why not."""
        if not operations:
            return None
        with self._lock:
            if self._paused:
                return Deferral.PAUSED
            if self._hold_until is not None and self._clock() < self._hold_until:
                return Deferral.RATE_LIMIT
            reason, self._ledger = admit(self._ledger, operations)
            return reason

    def hold(self, retry_after: float) -> None:
        """GitHub asked to wait ``retry-after`` seconds: no write is sent before then."""
        with self._lock:
            until = self._clock() + max(0.0, retry_after)
            self._hold_until = max(until, self._hold_until or until)
