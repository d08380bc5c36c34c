"""One pass per rule at a time on one machine: an exclusive file lock per rule.

``ai-operator run`` takes its rule's lock before gathering and holds it until the pass has acted
and recorded its outcomes. A second ``run`` of the same rule (another terminal, an overlapping
CronJob sharing the state directory) waits for it, at most ``wait_seconds``, then stops that
rule's pass with :class:`RuleBusy`, whose message says which rule, since when and which process
holds it. The lock is the kernel's (``flock``): it ends with its process, so a killed pass never
leaves a stale lock behind.

- Where: ``$XDG_CACHE_HOME/ai-operator/locks`` (beside the outcome records), one file per rule,
  named by a digest of ``namespace/name``; the file holds the holder's pid and start time.

Errors: :class:`RuleBusy` (another pass holds the lock); :class:`RuleLockError` (the directory
cannot be written, an ``OSError`` chained). Neither changes GitHub.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

DEFAULT_WAIT_SECONDS = 60.0
POLL_SECONDS = 0.2


class RuleLockError(Exception):
    """The lock directory could not be written; the message names the path."""


class RuleBusy(RuleLockError):
    """Another pass of the rule holds its lock."""


def lock_directory(cache_directory: Path) -> Path:
    """The locks beside the decisions' directory (``.../ai-operator/locks``)."""
    return cache_directory.parent / "locks"


class RuleLock:
    """Per-rule exclusive locks in ``directory``."""

    def __init__(
        self,
        directory: Path,
        *,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.directory = directory
        self.wait_seconds = wait_seconds
        self._clock = clock
        self._sleep = sleep

    def path(self, rule: str) -> Path:
        """The lock file of ``rule`` (``namespace/name``)."""
        return self.directory / f"{hashlib.sha256(rule.encode()).hexdigest()[:16]}.lock"

    @contextlib.contextmanager
    def held(self, rule: str) -> Iterator[None]:
        """Hold ``rule``'s lock (raises RuleBusy after waiting, RuleLockError on I/O errors)."""
        target = self.path(rule)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle = open(target, "a+", encoding="utf-8")  # noqa: SIM115 - held while yielding
        except OSError as exc:
            raise RuleLockError(f"cannot take the lock {target}: {exc}") from exc
        with handle:
            self._acquire(handle, rule)
            try:
                handle.seek(0)
                handle.truncate()
                since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                handle.write(f"pid {os.getpid()} since {since}\n")
                handle.flush()
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _acquire(self, handle: IO[str], rule: str) -> None:
        deadline = self._clock() + self.wait_seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if self._clock() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    raise RuleBusy(
                        f"another pass of {rule} is running ({holder}); waited "
                        f"{self.wait_seconds:.0f} s, this pass did nothing: try again when it ends"
                    ) from None
                self._sleep(POLL_SECONDS)
            except OSError as exc:
                raise RuleLockError(f"cannot take the lock {handle.name}: {exc}") from exc
