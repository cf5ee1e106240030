"""How an LLM task fails: retryable errors (the TaskDef's retry policy applies) and terminal ones.

The retryable ones derive from :class:`LlmError`; a request the provider refuses for good is a
:class:`LlmRejectedError`, a :class:`TerminalError`, so the engine skips retries. No message
carries the API key (:func:`workers.llm.client.scrub` masks it in anything a provider echoes).
"""

from __future__ import annotations

from orchestrator.errors import OrchestratorError, TerminalError

__all__ = [
    "IndexNotFoundError",
    "LlmConfigError",
    "LlmConnectionError",
    "LlmError",
    "LlmRejectedError",
    "LlmReplyError",
    "LlmTimeoutError",
    "LlmUnavailableError",
    "VectorStoreError",
]


class LlmConfigError(OrchestratorError):
    """The LLM configuration in the environment cannot be read (bad JSON, unknown fields)."""


class LlmError(OrchestratorError):
    """An LLM call failed in a way another attempt may fix."""


class LlmUnavailableError(LlmError):
    """The provider answered 408, 429 or 5xx: overloaded, rate limited or down."""


class LlmTimeoutError(LlmError):
    """No complete answer arrived within the task's ``timeoutSeconds``."""


class LlmConnectionError(LlmError):
    """The provider could not be reached."""


class LlmReplyError(LlmError):
    """The reply is not what was asked: not OpenAI's shape, not JSON, or not the JSON schema."""


class LlmRejectedError(TerminalError):
    """The provider refused the request with a 4xx status that no retry fixes."""


class VectorStoreError(OrchestratorError):
    """A vector store cannot add or search: a bad index name, a vector of the wrong size."""


class IndexNotFoundError(VectorStoreError):
    """A search names an index nothing was added to."""
