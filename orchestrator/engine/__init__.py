"""The pure state machine: ``decide`` turns inputs into events, ``evolve`` folds events.

Nothing in this package imports Kafka, RocksDB, HTTP, the clock, uuid or random.
"""

from orchestrator.engine.decide import Decision, Definitions, decide
from orchestrator.engine.evolve import evolve, fold
from orchestrator.engine.state import TaskState, WorkflowState

__all__ = ["Decision", "Definitions", "TaskState", "WorkflowState", "decide", "evolve", "fold"]
