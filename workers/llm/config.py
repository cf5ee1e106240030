"""Where the LLM tasks send their calls: a frozen configuration read from the environment.

| variable | meaning |
|---|---|
| ``OPENAI_BASE_URL`` | the default provider's API root (default ``https://api.openai.com/v1``) |
| ``OPENAI_API_KEY`` | its key, sent as ``Authorization: Bearer ...`` (never logged or output) |
| ``ORCH_LLM_MODEL`` | the chat and text model when a task names none |
| ``ORCH_LLM_EMBEDDING_MODEL`` | the embedding model when a task names none |
| ``ORCH_LLM_PROVIDERS`` | more providers, as JSON: ``{"local": {"baseUrl": ..., "apiKeyEnv":
  "LOCAL_KEY", "model": ..., "embeddingModel": ...}}``, chosen by a task's ``llmProvider`` |
| ``ORCH_LLM_INDEX_DIR`` | the JSON vector store's directory (default: ``<state dir>/llm-index``) |

A task's ``baseUrl`` overrides its provider's URL, but the provider's key goes only to the
provider's own origin: a workflow author cannot point a call elsewhere to collect the key.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from orchestrator.errors import TerminalError
from workers.llm.errors import LlmConfigError

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_PROVIDER", "Endpoint", "LlmConfig", "Provider"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_PROVIDER = "openai"
_VARIABLES = {
    "OPENAI_BASE_URL": "base_url",
    "OPENAI_API_KEY": "api_key",
    "ORCH_LLM_MODEL": "model",
    "ORCH_LLM_EMBEDDING_MODEL": "embedding_model",
    "ORCH_LLM_INDEX_DIR": "index_dir",
}


class Provider(BaseModel):
    """A provider of ``ORCH_LLM_PROVIDERS``; its key stays in its own variable."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    base_url: str = Field(alias="baseUrl")
    api_key_env: str | None = Field(default=None, alias="apiKeyEnv")
    model: str | None = None
    embedding_model: str | None = Field(default=None, alias="embeddingModel")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where one call goes: the API root, the key for it (if any) and the default models."""

    base_url: str
    api_key: SecretStr | None
    model: str | None
    embedding_model: str | None

    def url(self, path: str) -> str:
        """``base_url`` joined with ``path`` (``chat/completions``, ``embeddings``...)."""
        return f"{self.base_url.rstrip('/')}/{path.lstrip('/')}"


class LlmConfig(BaseModel):
    """The LLM tasks' settings: built in code, or by :meth:`from_env` from the variables above."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str = DEFAULT_BASE_URL
    api_key: SecretStr | None = None
    model: str | None = None
    embedding_model: str | None = None
    providers: dict[str, Provider] = Field(default_factory=dict)
    index_dir: Path | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LlmConfig:
        """The configuration the variables above describe; :class:`LlmConfigError` if invalid."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            field: env[variable] for variable, field in _VARIABLES.items() if env.get(variable)
        }
        try:
            if env.get("ORCH_LLM_PROVIDERS"):
                values["providers"] = orjson.loads(env["ORCH_LLM_PROVIDERS"])
            return cls.model_validate(values)
        except (orjson.JSONDecodeError, ValidationError) as exc:
            raise LlmConfigError(
                f"the LLM configuration in the environment is invalid: {exc}"
            ) from exc

    def endpoint(self, provider: str | None, base_url: str | None, task: str) -> Endpoint:
        """The endpoint of ``provider`` (default: the OPENAI_* one), at ``base_url`` if given.

        The key is dropped when ``base_url`` leaves the provider's origin. An unknown provider
        or a base URL that is not absolute http(s) is a :class:`TerminalError`.
        """
        chosen = self._provider(provider, task)
        if base_url is None:
            return chosen
        _check_url(base_url, task)
        key = chosen.api_key if _origin(base_url) == _origin(chosen.base_url) else None
        return Endpoint(base_url, key, chosen.model, chosen.embedding_model)

    def _provider(self, name: str | None, task: str) -> Endpoint:
        """The endpoint of the provider called ``name`` (the OPENAI_* one by default)."""
        if name is not None and name in self.providers:
            chosen = self.providers[name]
            value = os.environ.get(chosen.api_key_env) if chosen.api_key_env else None
            key = SecretStr(value) if value else None
            return Endpoint(chosen.base_url, key, chosen.model, chosen.embedding_model)
        if name in (None, "", DEFAULT_PROVIDER):
            return Endpoint(self.base_url, self.api_key, self.model, self.embedding_model)
        known = ", ".join(sorted({DEFAULT_PROVIDER, *self.providers}))
        raise TerminalError(f"{task} task input 'llmProvider' {name!r} is unknown; known: {known}")


def _check_url(url: str, task: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise TerminalError(f"{task} task input 'baseUrl' must be an absolute http(s) URL")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port
