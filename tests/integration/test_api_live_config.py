"""The API follows its configuration file: auth keys and limits change without a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator.api.auth import issue_hs256_token
from tests.helpers import assert_eventually

pytestmark = pytest.mark.integration

SECRET_A = "a" * 40
SECRET_B = "b" * 40


def _config(secret: str, max_body_bytes: int = 1_048_576) -> str:
    auth = f'[auth]\nenabled = true\nhs256_secret = "{secret}"\n'
    return f"[api]\nmax_body_bytes = {max_body_bytes}\n{auth}"


def _status_with(url: str, secret: str) -> int:
    token = issue_hs256_token(secret, "ops", ["viewer"], ["*"])
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.get(f"{url}/v1/workflows", headers=headers, timeout=5).status_code


def test_keys_and_limits_reload(api_factory: Any, tmp_path: Path) -> None:
    """A new secret applies live, a broken file keeps the old one, a smaller body limit applies."""
    path = tmp_path / "api.toml"
    path.write_text(_config(SECRET_A))
    url = api_factory(config_file=path).url
    assert _status_with(url, SECRET_A) == 200
    assert _status_with(url, SECRET_B) == 401

    path.write_text(_config(SECRET_B))
    assert_eventually(lambda: _status_with(url, SECRET_B) == 200, timeout=10)
    assert _status_with(url, SECRET_A) == 401

    path.write_text("[api]\nmax_body_bytes = 'lots'\n")  # wrong type: rejected, B stays
    path.write_text("[api\n")  # not TOML either
    assert_eventually(lambda: _status_with(url, SECRET_B) == 200, timeout=3)

    path.write_text(_config(SECRET_B, max_body_bytes=2048))
    token = issue_hs256_token(SECRET_B, "ops", ["operator"], ["*"])
    big = {"name": "anything", "input": {"blob": "x" * 4096}}

    def refused() -> bool:
        response = httpx.post(
            f"{url}/v1/workflows", json=big, headers={"Authorization": f"Bearer {token}"}
        )
        return response.status_code == 413

    assert_eventually(refused, timeout=10)
