"""Live configuration files: parsing, validation errors, and the watcher that reloads them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from orchestrator.config import Settings
from orchestrator.errors import ConfigFileError
from orchestrator.live_config import (
    ConfigWatcher,
    LiveConfig,
    load_live_config,
    log_level_follower,
    parse_live_config,
)
from tests.helpers import assert_eventually

FULL = """
log_level = "debug"

[worker]
concurrency = 4
rate_limit_per_second = 2.5

[worker.rate_limits]
send_email = 5

[api]
rate_limit_per_second = 10
max_body_bytes = 2048

[auth]
enabled = true
hs256_secret = "s3cret"
jwks_file = "keys.json"
issuer = "https://issuer"
audience = "orchestrator"
"""


# Parsing ---------------------------------------------------------------------------------------


def test_every_section_parses_into_typed_values() -> None:
    """A complete file gives typed values; the secret stays masked in the model's repr."""
    config = parse_live_config(FULL, "live.toml")
    assert config.log_level == "DEBUG"
    assert config.worker.concurrency == 4
    assert config.worker.rate_for("send_email") == 5
    assert config.worker.rate_for("other") == 2.5
    assert config.api.max_body_bytes == 2048
    assert config.auth is not None
    assert config.auth.hs256_secret is not None
    assert config.auth.hs256_secret.get_secret_value() == "s3cret"
    assert config.auth.jwks_file == Path("keys.json")
    assert config.auth.leeway_s == 30
    assert "s3cret" not in repr(config)


def test_an_empty_file_means_every_default() -> None:
    """Nothing set: no log level, the flag's concurrency, no rate limits, no auth section."""
    config = parse_live_config("", "live.toml")
    assert config == LiveConfig()
    assert config.worker.concurrency is None
    assert config.worker.rate_for("any") == 0
    assert config.auth is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[worker\nconcurrency = 1", "not valid TOML: Expected ']' at the end of a table"),
        ("log_level = 'INFO'\nx = = 1", "(at line 2, column 5)"),
        ("[worker]\nconcurency = 3", "worker.concurency: unknown key"),
        ("[worker.limits]\na = 1", "worker.limits: unknown key"),
        ("colour = 'blue'", "colour: unknown key"),
        ('[worker]\nconcurrency = "8"', "worker.concurrency: expected an integer, got a string"),
        ("[worker]\nconcurrency = 0", "worker.concurrency: Input should be greater than or equal"),
        ("[worker.rate_limits]\nsend_email = -1", "worker.rate_limits.send_email: Input should"),
        ('[worker.rate_limits]\n"no spaces" = 1', "worker.rate_limits: task name 'no spaces'"),
        ("worker = 3", "worker: expected a table, got an integer"),
        ("[api]\nmax_body_bytes = true", "api.max_body_bytes: expected an integer, got a boolean"),
        ('log_level = "LOUD"', "log_level: unknown log level 'LOUD'"),
    ],
)
def test_a_bad_file_names_the_file_and_the_problem(text: str, problem: str) -> None:
    """Syntax errors carry line and column; schema errors the key's dotted path."""
    with pytest.raises(ConfigFileError) as caught:
        parse_live_config(text, "conf/live.toml")
    assert str(caught.value).startswith("conf/live.toml: ")
    assert problem in str(caught.value)


def test_a_wrongly_typed_secret_is_not_echoed() -> None:
    """A type error names the value's type only, so a secret never reaches a log."""
    with pytest.raises(ConfigFileError) as caught:
        parse_live_config('[auth]\nhs256_secret = 123456789\nenabled = "yes"', "live.toml")
    message = str(caught.value)
    assert "auth.hs256_secret: expected a string, got an integer" in message
    assert "auth.enabled: expected a boolean, got a string" in message
    assert "123456789" not in message


def test_a_missing_file_is_a_config_file_error(tmp_path: Path) -> None:
    """A file that cannot be read is named in the error."""
    with pytest.raises(ConfigFileError, match=r"missing\.toml: cannot read"):
        load_live_config(tmp_path / "missing.toml")


# The watcher -----------------------------------------------------------------------------------


class Recorder:
    """A thread-safe list of the configurations a watcher applied."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: list[LiveConfig] = []

    def __call__(self, config: LiveConfig) -> None:
        with self._lock:
            self._seen.append(config)

    @property
    def seen(self) -> list[LiveConfig]:
        with self._lock:
            return list(self._seen)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """A configuration file with concurrency 1."""
    path = tmp_path / "live.toml"
    path.write_text("[worker]\nconcurrency = 1\n")
    return path


@pytest.fixture
def watched(config_file: Path) -> Iterator[tuple[ConfigWatcher, Recorder]]:
    """A started watcher of ``config_file`` polling every 20 ms, and what it applied."""
    recorder = Recorder()
    watcher = ConfigWatcher(config_file, recorder, interval_s=0.02)
    watcher.start()
    yield watcher, recorder
    watcher.stop()


def concurrency_applied(recorder: Recorder, value: int) -> bool:
    """Whether the last applied configuration has ``value`` as its concurrency."""
    return bool(recorder.seen) and recorder.seen[-1].worker.concurrency == value


def test_start_applies_the_file_and_a_change_applies_the_new_version(
    config_file: Path, watched: tuple[ConfigWatcher, Recorder]
) -> None:
    """The callback gets the file at start, then each new version once."""
    watcher, recorder = watched
    assert [c.worker.concurrency for c in recorder.seen] == [1]
    config_file.write_text("[worker]\nconcurrency = 4\n")
    assert_eventually(lambda: concurrency_applied(recorder, 4), timeout=5)
    assert watcher.current.worker.concurrency == 4
    assert [c.worker.concurrency for c in recorder.seen] == [1, 4]


def test_a_broken_version_is_logged_and_the_old_one_stays_until_fixed(
    config_file: Path, watched: tuple[ConfigWatcher, Recorder]
) -> None:
    """A bad edit is an error log naming the problem; the next good edit applies."""
    watcher, recorder = watched
    with capture_logs() as logs:
        config_file.write_text("[worker]\nconcurrency = 'many'\n")
        rejected = assert_eventually(
            lambda: [e for e in logs if e["log_level"] == "error"], timeout=5
        )
    assert rejected[0]["path"] == str(config_file)
    assert rejected[0]["error"] == "worker.concurrency: expected an integer, got a string"
    assert len(rejected) == 1, "a bad version is reported once, not on every poll"
    assert watcher.current.worker.concurrency == 1
    assert len(recorder.seen) == 1

    config_file.write_text("[worker]\nconcurrency = 3\n")
    assert_eventually(lambda: concurrency_applied(recorder, 3), timeout=5)
    assert watcher.current.worker.concurrency == 3


def test_a_deleted_file_keeps_the_configuration_and_a_new_file_applies(
    config_file: Path, watched: tuple[ConfigWatcher, Recorder]
) -> None:
    """A file that disappears (an editor's rename) is an error, not an empty configuration."""
    watcher, recorder = watched
    with capture_logs() as logs:
        config_file.unlink()
        assert_eventually(lambda: any(e["log_level"] == "error" for e in logs), timeout=5)
    assert watcher.current.worker.concurrency == 1
    config_file.write_text("[worker]\nconcurrency = 2\n")
    assert_eventually(lambda: concurrency_applied(recorder, 2), timeout=5)


def test_an_edit_that_changes_nothing_calls_nobody(
    config_file: Path, watched: tuple[ConfigWatcher, Recorder]
) -> None:
    """Comments and reformatting give an equal configuration: no callback."""
    _, recorder = watched
    config_file.write_text("# tuned\n[worker]\nconcurrency  =  1\n")
    time.sleep(0.2)  # ten polls: time for a callback that must not come
    config_file.write_text("[worker]\nconcurrency = 5\n")
    assert_eventually(lambda: concurrency_applied(recorder, 5), timeout=5)
    assert [c.worker.concurrency for c in recorder.seen] == [1, 5]


def test_a_failing_callback_is_logged_and_the_watcher_goes_on(config_file: Path) -> None:
    """An exception in the callback is logged; later versions still arrive."""
    recorder = Recorder()

    def flaky(config: LiveConfig) -> None:
        recorder(config)
        if config.worker.concurrency == 2:
            raise RuntimeError("cannot apply")

    with capture_logs() as logs, ConfigWatcher(config_file, flaky, interval_s=0.02):
        config_file.write_text("[worker]\nconcurrency = 2\n")
        assert_eventually(lambda: any(e["log_level"] == "error" for e in logs), timeout=5)
        config_file.write_text("[worker]\nconcurrency = 3\n")
        assert_eventually(lambda: concurrency_applied(recorder, 3), timeout=5)
    failure = next(e for e in logs if e["log_level"] == "error")
    assert failure["event"] == "applying the configuration failed"
    assert failure["exc_info"] is True


def test_a_bad_file_at_start_raises(tmp_path: Path) -> None:
    """A process never starts on a broken configuration: start() raises and watches nothing."""
    path = tmp_path / "live.toml"
    path.write_text("[worker]\nthreads = 3\n")
    watcher = ConfigWatcher(path, Recorder())
    with pytest.raises(ConfigFileError, match=r"worker\.threads: unknown key"):
        watcher.start()
    with pytest.raises(RuntimeError, match="has not started"):
        _ = watcher.current


def test_the_log_level_follows_the_file_and_falls_back_to_the_flag(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Logging is re-configured only when the level changes; no log_level means the flag's."""
    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(
        "orchestrator.live_config.configure_logging", lambda fmt, level: calls.append((fmt, level))
    )
    follow = log_level_follower(Settings(log_format="json", log_level="info"))
    follow(parse_live_config("", "live.toml"))
    follow(parse_live_config('log_level = "debug"', "live.toml"))
    follow(parse_live_config('log_level = "DEBUG"\n[worker]\nconcurrency = 2', "live.toml"))
    follow(parse_live_config("", "live.toml"))
    assert calls == [("json", "DEBUG"), ("json", "INFO")]
