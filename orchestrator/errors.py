"""The one error tree of the project.

Every error the project raises derives from :class:`OrchestratorError`, with one base per area.
Errors that travel inside events are data (see ``engine.events``), not exceptions.
"""

from __future__ import annotations


class OrchestratorError(Exception):
    """Root of every error the orchestrator raises."""


# Definitions -----------------------------------------------------------------------------------


class DefinitionError(OrchestratorError):
    """A workflow or task definition is invalid."""

    def __init__(self, message: str, *, source: str | None = None, path: str | None = None):
        self.detail = message
        self.source = source
        self.path = path
        where = ": ".join(part for part in (source, path) if part)
        super().__init__(f"{where}: {message}" if where else message)


class ExpressionError(DefinitionError):
    """An input expression such as ``${ref.output.x}`` cannot be parsed."""


# Schema ----------------------------------------------------------------------------------------


class SchemaError(OrchestratorError):
    """A record does not match its Avro schema."""


class UnknownSchemaError(SchemaError):
    """A record names a schema fingerprint nobody registered."""


class DecodeError(SchemaError):
    """Bytes on a topic are not a record this project can decode."""


# Broker ----------------------------------------------------------------------------------------


class BrokerError(OrchestratorError):
    """The Kafka broker failed or refused an operation."""


class BrokerUnreachableError(BrokerError):
    """No broker answered at the configured bootstrap address in time."""


class TransactionError(BrokerError):
    """A Kafka transaction failed; the instance drops its overlay and catches up from the log."""


class EmbeddedBrokerError(BrokerError):
    """The embedded broker binary is missing or did not start."""


class TopicNameError(BrokerError):
    """A prefix or task type cannot form a legal Kafka topic name."""


class TopicLayoutError(BrokerError):
    """Existing topics break co-partitioning: requests, results and events differ in partitions."""


# State -----------------------------------------------------------------------------------------


class StateError(OrchestratorError):
    """The local RocksDB state is missing, corrupt or of an unknown version."""


class BackupError(StateError):
    """A state backup cannot be taken or restored: no stores, a bad manifest, a busy target."""


# Configuration ---------------------------------------------------------------------------------


class ConfigFileError(OrchestratorError):
    """A live configuration file cannot be read, is not TOML, or breaks its schema."""

    def __init__(self, message: str, *, path: str) -> None:
        self.detail = message
        self.path = path
        super().__init__(f"{path}: {message}")


# Workflow --------------------------------------------------------------------------------------


class WorkflowError(OrchestratorError):
    """A workflow operation failed."""


class WorkflowNotFoundError(WorkflowError):
    """No workflow with this id exists in the log."""


class RequestConflictError(WorkflowError):
    """A request conflicts with what exists: a name owned by another namespace, a wrong state."""


class WorkflowTimeoutError(WorkflowError):
    """A workflow did not reach a terminal status within the time the caller allowed."""


class HandlerError(OrchestratorError):
    """A worker handler is declared wrongly (bad signature, duplicate task type)."""


class TerminalError(OrchestratorError):
    """Raised by a task handler for a failure retrying cannot fix: FAILED_WITH_TERMINAL_ERROR."""


# Scripts ---------------------------------------------------------------------------------------


class ScriptError(OrchestratorError):
    """A JavaScript or jq script failed: it threw, did not parse, or ran out of time or memory."""


# Auth ------------------------------------------------------------------------------------------


class AuthError(OrchestratorError):
    """An HTTP API request failed authentication or authorization."""


class AuthConfigError(AuthError):
    """The authentication settings cannot verify any token (no key source, unreadable JWKS)."""


class UnauthorizedError(AuthError):
    """A request carries no bearer token, or one that is malformed, expired or wrongly signed."""


class ForbiddenError(AuthError):
    """A verified principal lacks the role or namespace an operation needs."""
