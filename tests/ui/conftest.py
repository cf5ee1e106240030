"""UI fixtures: the integration tier's broker topics, processor and API, and a Chromium page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import (  # noqa: F401 - fixtures re-exported for tests/ui
    _short_session_timeout,
    api_factory,
    api_server,
    processor_thread,
    topics,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parent / "artifacts"


class ConsoleLog:
    """Console errors and uncaught exceptions of a page; some HTTP refusals may be expected."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.expected: list[re.Pattern[str]] = []

    def expect(self, pattern: str) -> None:
        """Allow one console error matching ``pattern`` (a refusal the test provokes)."""
        self.expected.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        """The errors no ``expect`` allowed, each pattern allowing one error."""
        allowed = list(self.expected)
        left = []
        for error in self.errors:
            match = next((p for p in allowed if p.search(error)), None)
            if match is None:
                left.append(error)
            else:
                allowed.remove(match)
        return left


@pytest.fixture
def browser_page() -> Iterator[tuple[Any, ConsoleLog]]:
    """A Chromium page (Debian's /usr/bin/chromium, no download) and its console error log."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: the UI test drives the system Chromium")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(20_000)
        log = ConsoleLog()
        page.on("console", lambda m: log.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: log.errors.append(f"uncaught: {exc}"))
        try:
            yield page, log
        finally:
            browser.close()
