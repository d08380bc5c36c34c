"""Logging: structlog over the standard library, with secrets redacted from every line.

Every line, from structlog or from a library's stdlib logger (httpx2, urllib3, anthropic, ...),
goes through one handler on the root logger and one processor chain:

    level filter -> context, logger name, level, ISO timestamp -> exception text -> redaction
    -> renderer (JSON lines, or a readable console format)

Redaction replaces with ``[REDACTED]``, in the event and in every string value (nested dicts,
lists, exception tracebacks, the text of non-string values):

- every registered secret (:func:`configure_logging`'s ``secrets``, then :func:`add_secrets`);
  values shorter than :data:`MIN_SECRET_LENGTH` are ignored, since they would blank ordinary words;
- anything shaped like a credential, registered or not: GitHub tokens (``ghp_``, ``gho_``,
  ``ghu_``, ``ghs_``, ``ghr_``, ``github_pat_``), API keys (``sk-ant-...``, ``sk-...``), and the
  value after ``Bearer`` / ``token`` (as in an ``Authorization`` header).

The ``decision`` logger (:func:`decision_logger`) writes one INFO line per decision whatever the
configured level, through the same redaction and renderer.

Logs go to stderr by default; stdout is for command output. Tracebacks are always rendered as
plain text before redaction, never with local variables.
This module must not read the environment: the caller passes level, format and secrets.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Sequence
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[REDACTED]"
MIN_SECRET_LENGTH = 4
FORMATS = ("json", "console")
DECISION_LOGGER = "decision"
_LEADING_KEYS = ("timestamp", "level", "logger", "event")

_TOKEN_SHAPES = re.compile(
    r"\bgh[pousr]_[A-Za-z0-9]{20,}"
    r"|\bgithub_pat_[A-Za-z0-9_]{20,}"
    r"|\bsk-[A-Za-z0-9_\-]{16,}"
    # The value after an authorization scheme: a long value, or a shorter one with a digit, so
    # that prose such as "token expired" stays readable.
    r"|(?P<scheme>\b(?i:bearer|token)\s+)"
    r"(?:[A-Za-z0-9\-._~+/]{20,}|(?=[A-Za-z0-9\-._~+/]*[0-9])[A-Za-z0-9\-._~+/]{8,})=*"
)
_PLAIN_TYPES = (int, float, bool, type(None))


class _SecretRegistry:
    """The registered secrets, as one pattern rebuilt whenever a secret is added."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None

    def add(self, values: Sequence[str]) -> None:
        """Register values; short or empty ones are ignored."""
        with self._lock:
            kept = {v for v in values if len(v) >= MIN_SECRET_LENGTH}
            self._secrets = self._secrets | kept
            longest_first = sorted(self._secrets, key=len, reverse=True)
            alternatives = "|".join(re.escape(s) for s in longest_first)
            self._pattern = re.compile(alternatives) if alternatives else None

    def redact(self, text: str) -> str:
        """Replace registered secrets, then credential-shaped strings, with REDACTED."""
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(REDACTED, text)
        return _TOKEN_SHAPES.sub(_redact_match, text)


def _redact_match(match: re.Match[str]) -> str:
    """Replace a credential-shaped match, keeping an authorization scheme readable."""
    return (match.group("scheme") or "") + REDACTED


_SECRETS = _SecretRegistry()
_handler: logging.Handler | None = None
_decision_handler: logging.Handler | None = None


def redact(text: str) -> str:
    """Return ``text`` with registered secrets and credential-shaped strings replaced."""
    return _SECRETS.redact(text)


def add_secrets(*values: str) -> None:
    """Register more secrets to redact (e.g. tokens read from the environment)."""
    _SECRETS.add(values)


def redact_event(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Structlog processor: redact every string in the event dict, recursively."""
    return {key: _redact_value(value) for key, value in event_dict.items()}


def configure_logging(
    level: str = "INFO",
    fmt: str | None = None,
    secrets: Sequence[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Route structlog and stdlib logging through redaction to ``stream`` (stderr by default).

    ``fmt`` is ``"json"`` (one object per line) or ``"console"``; ``None`` picks console on a
    terminal and JSON otherwise. Calling it again replaces the previous configuration;
    ``secrets`` are added to those already registered (a secret is never forgotten).
    """
    numeric_level = _level_number(level)
    out = stream if stream is not None else sys.stderr
    is_tty = _is_tty(out)
    chosen = fmt.strip().lower() if fmt else None
    if chosen is not None and chosen not in FORMATS:
        raise ValueError(f"log format must be one of {FORMATS}, not {fmt!r}")
    use_json = chosen == "json" or (chosen is None and not is_tty)
    _SECRETS.add(secrets)
    formatter = _formatter(use_json, colors=is_tty)
    _install_handler(out, numeric_level, formatter)
    _install_decision_handler(out, numeric_level, formatter)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_context_processors(),
            # Redacted before the record exists, so that no other handler sees a secret either.
            structlog.processors.format_exc_info,
            redact_event,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(ignore_frame_names=[__name__]),
        context_class=dict,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str | None = None, **context: Any) -> structlog.stdlib.BoundLogger:
    """Return a logger named ``name`` (the caller's module when None) bound to ``context``."""
    # No positional argument lets structlog name the logger after the calling module.
    logger = structlog.stdlib.get_logger(name) if name else structlog.stdlib.get_logger()
    return logger.bind(**context) if context else logger


def decision_logger(**context: Any) -> structlog.stdlib.BoundLogger:
    """The logger of the decision lines (logger ``decision``), bound to ``context``.

    Its INFO lines are written whatever the configured level: a level of WARNING or ERROR quiets
    everything else, never the record of what was decided. Redaction applies as to every line.
    """
    return get_logger(DECISION_LOGGER, **context)


def _redact_value(value: Any) -> Any:
    """Redact one value: strings, containers recursively, anything else through its text."""
    if isinstance(value, str):
        return _SECRETS.redact(value)
    if isinstance(value, _PLAIN_TYPES):
        return value
    if isinstance(value, dict):
        return {_redact_value(k): _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(v) for v in value]
    return _SECRETS.redact(str(value))


def _context_processors() -> list[Processor]:
    """Processors shared by structlog and stdlib records: context, name, level, timestamp."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


def _formatter(use_json: bool, *, colors: bool) -> structlog.stdlib.ProcessorFormatter:
    """Build the one formatter: exception text, redaction, then the renderer."""
    renderers: list[Processor]
    if use_json:
        renderers = [_leading_keys_first, structlog.processors.JSONRenderer()]
    else:
        renderers = [
            structlog.dev.ConsoleRenderer(
                colors=colors, exception_formatter=structlog.dev.plain_traceback
            )
        ]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_context_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_event,
            *renderers,
        ],
    )


def _leading_keys_first(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Order a JSON line as timestamp, level, logger, event, then the context."""
    first = {k: event_dict[k] for k in _LEADING_KEYS if k in event_dict}
    return first | {k: v for k, v in event_dict.items() if k not in first}


CHATTY_LIBRARIES = ("httpx", "httpx2", "httpcore", "anthropic", "openai", "urllib3")
SDK_RETRY_LOGGERS = ("anthropic._base_client", "openai._base_client")


def _install_decision_handler(stream: TextIO, level: int, formatter: logging.Formatter) -> None:
    """Give the decision logger a handler of its own, so that no level above INFO hides it."""
    global _decision_handler  # noqa: PLW0603 -- one handler per process, like _handler
    logger = logging.getLogger(DECISION_LOGGER)
    if _decision_handler is not None:
        logger.removeHandler(_decision_handler)
    _decision_handler = logging.StreamHandler(stream)
    _decision_handler.setFormatter(formatter)
    logger.addHandler(_decision_handler)
    logger.setLevel(min(level, logging.INFO))
    logger.propagate = False  # the root handler's level would drop these lines


def _install_handler(stream: TextIO, level: int, formatter: logging.Formatter) -> None:
    """Put our handler on the root logger, replacing ours and any bare stream handler."""
    global _handler  # noqa: PLW0603 -- one handler per process, replaced on reconfiguration
    root = logging.getLogger()
    for handler in list(root.handlers):
        # A bare StreamHandler (logging.basicConfig, an SDK's debug switch) would print records
        # unredacted; subclasses (such as test capture handlers) are left alone.
        if handler is _handler or type(handler) is logging.StreamHandler:
            root.removeHandler(handler)
    _handler = logging.StreamHandler(stream)
    # The handler filters too: a library logger with its own lower level still propagates here.
    _handler.setLevel(level)
    _handler.setFormatter(formatter)
    root.addHandler(_handler)
    root.setLevel(level)
    # HTTP clients log every request at INFO; that is DEBUG detail here (one line per decision).
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(level if level <= logging.DEBUG else logging.WARNING)
    # ... except the SDKs' retry lines ("Retrying request ... in 0.8 seconds"), their only INFO.
    for name in SDK_RETRY_LOGGERS:
        logging.getLogger(name).setLevel(level)


def _level_number(level: str) -> int:
    """Return the numeric level of a level name (DEBUG, INFO, WARNING, ERROR, CRITICAL)."""
    number = logging.getLevelNamesMapping().get(level.strip().upper())
    if number is None:
        raise ValueError(f"unknown log level {level!r}")
    return number


def _is_tty(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal (False for streams without ``isatty``)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty()) if callable(isatty) else False
