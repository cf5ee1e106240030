"""The workflow definition language (Conductor's JSON DSL): models, expressions, validation."""

from orchestrator.dsl.expressions import resolve
from orchestrator.dsl.model import WorkflowDef, WorkflowTask
from orchestrator.dsl.validate import load_definition_file, parse_definition

__all__ = ["WorkflowDef", "WorkflowTask", "load_definition_file", "parse_definition", "resolve"]
