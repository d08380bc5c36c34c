"""The local memory of decisions: one JSON file per rule in the user's cache directory.

``ai-operator run`` reads it before a pass and writes the pass's new decisions back, so that a
pull request whose facts did not change is not sent to the model again (see
:mod:`jobs.policy.reuse` for what "did not change" means and for the file's shape).

- Where: ``$XDG_CACHE_HOME/ai-operator/decisions`` (default ``~/.cache/ai-operator/decisions``),
  one file per rule, named by a digest of the rule's ``namespace/name``.
- Bounded: a file keeps only decisions younger than the maximum age, at most ``max_entries``
  (the newest); files nobody wrote within the maximum age are deleted.
- Safe with concurrent runs: writers take an exclusive ``flock`` on a lock file, merge what is on
  disk with their own entries (per pull request the newest wins) and replace the file atomically
  (a temporary file renamed over it), so a reader never sees half a file.

Errors: :class:`DecisionCacheError` (an ``OSError`` of the cache directory, chained) from
:meth:`DecisionFile.keep`; :meth:`DecisionFile.recall` treats a missing or unreadable file as an
empty memory. Neither is ever fatal to a pass: asking the model again is only slower.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from ai_operator.jobs.policy.reuse import Remembered, memory_document, merged, read_memory_document

MAX_ENTRIES = 5000
"""Per rule; a decision is about 1 KB on disk, so a file stays under about 5 MB."""


class DecisionCacheError(Exception):
    """The cache directory could not be written; the message names the path."""


def cache_directory(xdg_cache_home: str | None, home: str | None) -> Path:
    """Where decisions are kept: ``$XDG_CACHE_HOME/ai-operator/decisions`` or under ``~/.cache``."""
    base = Path(xdg_cache_home) if xdg_cache_home else Path(home or "~").expanduser() / ".cache"
    return base / "ai-operator" / "decisions"


class DecisionFile:
    """A rule's remembered decisions, kept in ``directory``."""

    def __init__(
        self,
        directory: Path,
        *,
        max_age_seconds: float,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self.max_age_seconds = max_age_seconds
        self.max_entries = max_entries
        self._clock = clock

    def path(self, rule: str) -> Path:
        """The file of ``rule`` (``namespace/name``)."""
        return self.directory / f"{hashlib.sha256(rule.encode()).hexdigest()[:16]}.json"

    def recall(self, rule: str) -> dict[str, Remembered]:
        """What is remembered for ``rule``; empty when nothing (readable) is."""
        try:
            text = self.path(rule).read_text(encoding="utf-8")
        except OSError:
            return {}
        try:
            return read_memory_document(json.loads(text), rule=rule)
        except ValueError:
            return {}

    def keep(self, rule: str, entries: Mapping[str, Remembered]) -> None:
        """Add ``entries`` to what is remembered for ``rule`` (raises DecisionCacheError)."""
        target = self.path(rule)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with self._locked(target):
                document = memory_document(
                    merged(self.recall(rule), entries),
                    rule=rule,
                    now=self._clock(),
                    max_age=self.max_age_seconds,
                    max_entries=self.max_entries,
                )
                _replace(target, json.dumps(document, separators=(",", ":"), ensure_ascii=False))
            self._forget_stale_files()
        except OSError as exc:
            raise DecisionCacheError(f"cannot write the decision cache {target}: {exc}") from exc

    @contextlib.contextmanager
    def _locked(self, target: Path) -> Iterator[None]:
        with open(target.with_suffix(".lock"), "a", encoding="utf-8") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _forget_stale_files(self) -> None:
        """Delete files (and their locks) nobody wrote within the maximum age."""
        oldest = self._clock() - self.max_age_seconds
        for stale in self.directory.glob("*.json"):
            with contextlib.suppress(OSError):
                if stale.stat().st_mtime < oldest:
                    stale.unlink()
                    stale.with_suffix(".lock").unlink(missing_ok=True)


def _replace(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` atomically: a temporary file in the same directory, renamed."""
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
