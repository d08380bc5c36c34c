"""Recordings of a model's answers, keyed by model and prompt, for testing rules offline.

``ai-operator test --record FILE`` writes every answer of the run; ``--replay FILE`` serves them
again through the stand-in model server (:class:`~jobs.sandbox.llm.FakeLLM`), so the real client
and SDK parse them as they parsed the model's. A prompt is named by the SHA-256 of its system and
user messages: a changed rule or case is a changed prompt, with no recorded answer.

The file says what produced it (``producedBy``): a model, or ``stand-in (not a real model)``.
It holds no token and no endpoint credentials.

Errors: :class:`RecordingError` (a file that cannot be read or is not a recording).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ai_operator.jobs.clients.ai.errors import AIResponseInvalid
from ai_operator.jobs.clients.ai.usage import ModelUsage
from ai_operator.jobs.reconcile.ports import Decider
from ai_operator.jobs.sandbox.llm import LLMRequest

KIND = "ModelRecording"
HEADER = """\
# Model answers recorded by `ai-operator test --record`, replayed offline by `--replay`.
# Each answer is keyed by the model and a hash of the prompt: when the rule or a case changes,
# its prompt changes too and must be recorded again.
"""
UNUSABLE = "unusable"


class RecordingError(Exception):
    """A recording file cannot be used; the message names the file."""


def prompt_key(system: str, user: str) -> str:
    """The name of a prompt: ``sha256:`` and the digest of its two messages."""
    digest = hashlib.sha256(json.dumps([system, user], ensure_ascii=False).encode()).hexdigest()
    return f"sha256:{digest}"


@dataclass
class Recording:
    """Answers by ``(model, prompt key)``, each with the case that produced it."""

    produced_by: str
    rule: str = ""
    answers: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    @property
    def models(self) -> list[str]:
        """The models whose answers are recorded."""
        return sorted({model for model, _ in self.answers})

    def find(self, model: str, key: str) -> dict[str, Any] | None:
        """The recorded entry for ``model`` and prompt ``key``, or None."""
        return self.answers.get((model, key))

    def replay_answer(self, request: LLMRequest) -> object:
        """What the model server answers to ``request``: the recorded answer, as it came."""
        entry = self.find(request.model, prompt_key(request.system, request.user))
        if entry is None:
            return "no recorded answer for this prompt"
        if UNUSABLE in entry:
            return f"(an unusable answer was recorded: {entry[UNUSABLE]})"
        return entry["answer"]

    def to_yaml(self) -> str:
        """The file's text."""
        entries = [
            {"case": entry["case"], "model": model, "prompt": key}
            | ({UNUSABLE: entry[UNUSABLE]} if UNUSABLE in entry else {"answer": entry["answer"]})
            for (model, key), entry in self.answers.items()
        ]
        document = {
            "kind": KIND,
            "producedBy": self.produced_by,
            "rule": self.rule,
            "answers": entries,
        }
        body = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
        return HEADER + body


def load_recording(path: Path) -> Recording:
    """The recording in ``path`` (raises :class:`RecordingError`)."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RecordingError(f"{path}: cannot read the recording: {exc}") from exc
    if not isinstance(document, dict) or document.get("kind") != KIND:
        raise RecordingError(f"{path}: not a recording (kind: {KIND})")
    recording = Recording(str(document.get("producedBy", "")), str(document.get("rule", "")))
    for index, entry in enumerate(document.get("answers") or []):
        if not isinstance(entry, dict) or not {"model", "prompt"} <= entry.keys():
            raise RecordingError(f"{path}: answers.{index}: needs model, prompt and answer")
        recording.answers[(str(entry["model"]), str(entry["prompt"]))] = entry
    return recording


class Recorder:
    """A decider that keeps every answer it passes on, by prompt key."""

    def __init__(self, decider: Decider) -> None:
        self._decider = decider
        self._lock = threading.Lock()
        self.answers: dict[str, dict[str, Any]] = {}

    def thread_usage(self) -> ModelUsage:
        """The wrapped decider's usage by the calling thread."""
        return self._decider.thread_usage()

    def ask(self, system: str, user: str, schema: dict[str, Any]) -> object:
        """Ask, and keep the answer (or why it was unusable) under the prompt's key."""
        key = prompt_key(system, user)
        try:
            answer = self._decider.ask(system, user, schema)
        except AIResponseInvalid as exc:
            with self._lock:
                self.answers[key] = {UNUSABLE: str(exc)}
            raise
        with self._lock:
            self.answers[key] = {"answer": answer}
        return answer
