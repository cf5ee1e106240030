"""Logging setup: JSON or console lines on stderr, reconfigurable, level-filtered."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import structlog

from orchestrator.telemetry import configure_logging, get_logger


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def test_json_lines_go_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    """JSON format writes one object per event to stderr with level, logger and ISO time."""
    configure_logging("json", "INFO")
    with structlog.contextvars.bound_contextvars(workflow_id="w1"):
        get_logger("orchestrator.test").info("started", attempt=2)
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    entry = json.loads(line)
    assert entry["event"] == "started"
    assert entry["level"] == "info"
    assert entry["logger_name"] == "orchestrator.test"
    assert entry["workflow_id"] == "w1"
    assert entry["attempt"] == 2
    assert entry["timestamp"].endswith("Z")


def test_reconfiguring_replaces_and_filters(capsys: pytest.CaptureFixture[str]) -> None:
    """A second call replaces the first (no duplicate lines) and applies its level."""
    log = get_logger("orchestrator.test")
    configure_logging("json", "DEBUG")
    configure_logging("console", "WARNING")
    log.info("hidden")
    log.warning("shown")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert "shown" in lines[0]


def test_unknown_level_is_refused() -> None:
    """A misspelt level fails loudly instead of logging everything."""
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("console", "LOUD")
