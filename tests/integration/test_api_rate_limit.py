"""The API's per-caller rate limit, on both APIs, in each one's error shape."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import ApiServer

pytestmark = pytest.mark.integration

RATE = 2  # requests/s per caller, and a burst of as many


@pytest.fixture
def limited(api_factory: Callable[..., ApiServer], tmp_path: Path) -> str:
    """An API limited to RATE requests/s per caller by its live configuration file."""
    config = tmp_path / "orchestrator.toml"
    config.write_text(f"[api]\nrate_limit_per_second = {RATE}\n")
    return api_factory(config).url


def over_the_limit(url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """Ask ``url`` until the limit answers (a burst is RATE requests); return that answer."""
    for _ in range(10 * RATE):
        response = httpx.get(url, headers=headers, timeout=5)
        if response.status_code == 429:
            return response
    raise AssertionError(f"no 429 from {url} within {10 * RATE} requests")


@pytest.mark.timeout(60)
def test_v1_answers_429_with_retry_after_once_a_caller_has_spent_its_burst(limited: str) -> None:
    """A caller over the limit gets 429 and Retry-After on /v1; another caller still gets in."""
    refused = over_the_limit(f"{limited}/v1/workflows", {"authorization": "Bearer one"})
    assert refused.json() == {"detail": f"rate limit of {RATE:g} requests/s exceeded"}
    assert refused.headers["retry-after"] == "1"
    other = httpx.get(f"{limited}/v1/workflows", headers={"authorization": "Bearer two"})
    assert other.status_code == 200


@pytest.mark.timeout(60)
def test_conductor_api_is_limited_in_conductor_shape_but_polling_and_health_are_not(
    limited: str,
) -> None:
    """/api answers Conductor's error body; task polls and /health never get a 429."""
    refused = over_the_limit(f"{limited}/api/metadata/workflow", {"authorization": "Bearer c"})
    body = refused.json()
    assert body["status"] == 429
    assert body["retryable"] is True
    assert "rate limit" in body["message"]
    headers = {"authorization": "Bearer c"}  # the same, exhausted caller
    assert httpx.get(f"{limited}/health", headers=headers).status_code == 200
    polled = httpx.get(f"{limited}/api/tasks/poll/nobody_serves_this?workerid=w", headers=headers)
    assert polled.status_code in (200, 204)
