"""Logging: JSON lines or console output, and no secret in any line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from datetime import datetime

import pytest

from ai_operator.jobs.log import (
    REDACTED,
    add_secrets,
    configure_logging,
    decision_logger,
    get_logger,
)

SECRET = "s3cr3t-value-0f-the-ai-token"
GITHUB_PAT = "ghp_" + "A1b2C3d4E5" * 4
FINE_GRAINED_PAT = "github_pat_" + "11ABCDEFG0" * 5
OAUTH_TOKEN = "gho_" + "Z9y8X7w6V5" * 4
ANTHROPIC_KEY = "sk-ant-api03-" + "q1w2e3r4t5" * 5


class TerminalStream(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


pytestmark = pytest.mark.usefixtures("restore_logging")


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    """Every line of the stream, each parsed as one JSON object."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def configured(fmt: str | None = "json", level: str = "INFO") -> io.StringIO:
    """Configure logging with SECRET registered; return the stream it writes to."""
    stream = io.StringIO()
    configure_logging(level=level, fmt=fmt, secrets=[SECRET], stream=stream)
    return stream


def test_json_format_is_one_object_per_line() -> None:
    """Each event is one JSON line with an ISO timestamp, level, event, logger and context."""
    stream = configured()
    log = get_logger("ai_operator.test", rule="ns/name")
    log.info("pass started", prs=3)
    log.warning("pass slow")
    first, second = json_lines(stream)
    assert first["event"] == "pass started"
    assert first["level"] == "info"
    assert first["logger"] == "ai_operator.test"
    assert first["rule"] == "ns/name"
    assert first["prs"] == 3
    assert datetime.fromisoformat(str(first["timestamp"])).tzinfo is not None
    assert second["level"] == "warning"


def test_unnamed_logger_is_named_after_the_calling_module() -> None:
    """get_logger() without a name uses the caller's module name."""
    stream = configured()
    get_logger().info("hello")
    assert json_lines(stream)[0]["logger"] == __name__


def raise_with_secret() -> None:
    raise RuntimeError(f"request failed with key {SECRET}")


def log_exception() -> None:
    try:
        raise_with_secret()
    except RuntimeError:
        get_logger().exception("pass failed")


class Credentials:
    """A value whose text shows a secret."""

    def __str__(self) -> str:
        return f"Credentials(token={SECRET})"

    __repr__ = __str__


@pytest.mark.parametrize(
    "emit",
    [
        pytest.param(lambda: get_logger().info(f"token is {SECRET}"), id="in-event"),
        pytest.param(lambda: get_logger().info("using %s", SECRET), id="positional-arg"),
        pytest.param(lambda: get_logger().info("call", token=SECRET), id="key-value"),
        pytest.param(
            lambda: get_logger().info("call", headers={"x-api-key": SECRET}), id="nested-dict"
        ),
        pytest.param(
            lambda: get_logger().info("call", args=[{"a": (1, f"k={SECRET}")}]), id="nested-list"
        ),
        pytest.param(lambda: get_logger(token=SECRET).info("bound"), id="bound-context"),
        pytest.param(lambda: get_logger().info("call", creds=Credentials()), id="object-text"),
        pytest.param(log_exception, id="exception-traceback"),
        pytest.param(
            lambda: logging.getLogger("anthropic").warning("key %s", SECRET), id="stdlib-logger"
        ),
        pytest.param(
            lambda: logging.getLogger("httpx2").error("failed", exc_info=RuntimeError(SECRET)),
            id="stdlib-exc-info",
        ),
    ],
)
def test_registered_secret_never_appears(emit: Callable[[], None]) -> None:
    """A configured secret is replaced wherever it hides in a log line."""
    stream = configured()
    emit()
    output = stream.getvalue()
    assert output
    assert SECRET not in output
    assert REDACTED in output


def test_exception_is_logged_with_its_traceback() -> None:
    """log.exception keeps the traceback (redacted), in the exception key."""
    stream = configured()
    log_exception()
    (line,) = json_lines(stream)
    assert "raise_with_secret" in str(line["exception"])
    assert f"request failed with key {REDACTED}" in str(line["exception"])


def test_secret_added_after_configuration_is_redacted() -> None:
    """add_secrets registers values read later (e.g. from the environment)."""
    stream = configured()
    late = "late-registered-secret-42"
    add_secrets(late)
    get_logger().info("call", value=late)
    assert late not in stream.getvalue()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(f"token={GITHUB_PAT}", f"token={REDACTED}", id="github-classic-pat"),
        pytest.param(FINE_GRAINED_PAT, REDACTED, id="github-fine-grained-pat"),
        pytest.param(f"({OAUTH_TOKEN})", f"({REDACTED})", id="github-oauth-token"),
        pytest.param(f"x-api-key: {ANTHROPIC_KEY}", f"x-api-key: {REDACTED}", id="anthropic-key"),
        pytest.param(
            "Authorization: Bearer abc.def-123_456",
            f"Authorization: Bearer {REDACTED}",
            id="bearer-header",
        ),
        pytest.param(
            "Authorization: token 0123456789abcdef0123456789abcdef01234567",
            f"Authorization: token {REDACTED}",
            id="token-header",
        ),
        pytest.param("the token expired", "the token expired", id="prose-token-kept"),
        pytest.param("bearer of bad news", "bearer of bad news", id="prose-bearer-kept"),
    ],
)
def test_token_shaped_strings_are_redacted_unregistered(text: str, expected: str) -> None:
    """Credential-shaped strings are redacted even when nobody registered them."""
    stream = configured()
    get_logger().info("request", detail=text)
    assert json_lines(stream)[0]["detail"] == expected


def test_console_format_is_readable() -> None:
    """Console output is one plain line per event: no JSON, no colour codes off a terminal."""
    stream = configured(fmt="console")
    get_logger("ai_operator.test").info("pass finished", rule="ns/name", merged=2)
    output = stream.getvalue()
    assert "pass finished" in output
    assert "rule=ns/name" in output
    assert "merged=2" in output
    assert "[ai_operator.test]" in output
    assert "\x1b[" not in output
    assert not output.lstrip().startswith("{")


def test_console_format_shows_redacted_traceback() -> None:
    """Console output prints the traceback as text after the line, redacted."""
    stream = configured(fmt="console")
    log_exception()
    output = stream.getvalue()
    assert "Traceback (most recent call last)" in output
    assert SECRET not in output


@pytest.mark.parametrize(
    ("stream_factory", "is_json"),
    [
        pytest.param(io.StringIO, True, id="pipe-gets-json"),
        pytest.param(TerminalStream, False, id="terminal-gets-console"),
    ],
)
def test_format_follows_the_stream_when_unset(
    stream_factory: Callable[[], io.StringIO], is_json: bool
) -> None:
    """Without a format, a terminal gets the console renderer and anything else JSON."""
    stream = stream_factory()
    configure_logging(stream=stream)
    get_logger().info("hello")
    assert stream.getvalue().startswith("{") is is_json


def test_logs_go_to_stderr_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    """Stdout stays free for command output."""
    configure_logging(fmt="json")
    get_logger().info("to stderr")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert json.loads(captured.err)["event"] == "to stderr"


def test_level_filters_structlog_and_library_loggers() -> None:
    """Below the level nothing is written, even from a library logger set to DEBUG itself."""
    stream = configured(level="WARNING")
    library = logging.getLogger("urllib3.test")
    library.setLevel(logging.DEBUG)
    try:
        get_logger().info("info dropped")
        library.debug("debug dropped, may carry headers")
        get_logger().warning("warning kept")
    finally:
        library.setLevel(logging.NOTSET)
    assert [line["event"] for line in json_lines(stream)] == ["warning kept"]


def test_debug_level_shows_debug_lines() -> None:
    """At DEBUG, debug lines of our loggers and of libraries are written, redacted."""
    stream = configured(level="debug")
    get_logger().debug("ours")
    logging.getLogger("httpx2").debug("Authorization: Bearer %s", SECRET)
    events = [line["event"] for line in json_lines(stream)]
    assert events == ["ours", f"Authorization: Bearer {REDACTED}"]


def test_configuring_again_replaces_the_handler() -> None:
    """Idempotent: configuring twice writes each line once, to the latest stream only."""
    old = configured()
    new = configured()
    get_logger().info("once")
    assert old.getvalue() == ""
    assert len(json_lines(new)) == 1


def test_bare_stream_handler_on_root_is_replaced() -> None:
    """A basicConfig-style handler would print unredacted records, so it is removed."""
    bare_stream = io.StringIO()
    logging.getLogger().addHandler(logging.StreamHandler(bare_stream))
    stream = configured()
    logging.getLogger("anthropic").warning("key %s", SECRET)
    assert bare_stream.getvalue() == ""
    assert SECRET not in stream.getvalue()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"level": "LOUD"}, "unknown log level", id="unknown-level"),
        pytest.param({"fmt": "xml"}, "log format", id="unknown-format"),
    ],
)
def test_bad_settings_are_rejected(kwargs: dict[str, str], message: str) -> None:
    """An unknown level or format is a ValueError naming the problem."""
    with pytest.raises(ValueError, match=message):
        configure_logging(stream=io.StringIO(), **kwargs)


@pytest.mark.parametrize("level", ["INFO", "WARNING", "ERROR"])
def test_decision_lines_are_written_whatever_the_level(level: str) -> None:
    """A quiet level hides other INFO lines, never a decision's; secrets are redacted there too."""
    stream = configured(level=level)
    get_logger("run").info("pass finished")
    decision_logger(rule="ns/name").info("decision", reason=f"the token {SECRET} leaked")
    [line] = [line for line in json_lines(stream) if line["event"] != "pass finished"]
    assert (line["logger"], line["level"], line["rule"]) == ("decision", "info", "ns/name")
    assert SECRET not in json.dumps(line) and REDACTED in str(line["reason"])
    assert any(x["event"] == "pass finished" for x in json_lines(stream)) is (level == "INFO")


def test_decision_lines_follow_a_debug_level_too() -> None:
    """DEBUG shows everything, the decision lines included, once each."""
    stream = configured(level="DEBUG")
    decision_logger().info("decision", number=7)
    assert [line["number"] for line in json_lines(stream) if line["logger"] == "decision"] == [7]
