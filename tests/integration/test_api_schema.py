"""The HTTP API against its own OpenAPI document: generated requests never cause a server error.

Schemathesis generates the requests. Its pytest plugin's lazy schemas (``from_fixture``) do not
run under pytest 9.2 (they set ``Function._nodeid``, which pytest 9.2 no longer has), so the
test drives one Hypothesis test per operation itself, with each operation's strategy.

Generated ids name nothing, so most requests end at a 404. A second run fixes the path
parameters to a live workflow of its own per operation, waiting at a HUMAN task, so generated
bodies reach the handlers' checks and the log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup

from orchestrator.processor.loop import Processor
from tests.helpers import assert_eventually
from tests.integration.conftest import ApiServer

pytestmark = pytest.mark.integration
EXAMPLES_PER_OPERATION = 15  # per operation; the API has about 60 (/v1 and /api)
CHECKS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def api_schema(api_factory: Callable[..., ApiServer]) -> schemathesis.BaseSchema:
    """The OpenAPI document of a running API (auth off, so requests reach the handlers)."""
    url = api_factory().url
    return schemathesis.openapi.from_url(f"{url}/openapi.json")


LIVE_FLOW = {
    "name": "live",
    "tasks": [
        {"name": "review", "taskReferenceName": "review", "type": "HUMAN"},
        {"name": "gate", "taskReferenceName": "gate", "type": "WAIT"},
    ],
}


def server_errors(
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
    path_parameters: dict[str, Any] | None = None,
) -> str | None:
    """The first failure of ``not_a_server_error`` over generated requests, or None.

    An operation without parameters or body has no invalid request to generate: in negative
    mode Hypothesis finds it unsatisfiable, and there is nothing to check.
    """
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @CHECKS
    @given(case=strategy)
    def call(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=[not_a_server_error], timeout=30)

    try:
        call()
    except Unsatisfiable:
        if mode is not GenerationMode.NEGATIVE:
            raise
    except (Exception, FailureGroup) as exc:  # noqa: BLE001 - reported together by the caller
        return str(exc)
    return None


def test_the_openapi_document_is_valid_openapi_3(api_schema: schemathesis.BaseSchema) -> None:
    """/openapi.json is a valid OpenAPI 3.x document that every operation of the API loads from."""
    assert api_schema.specification.version.startswith("3.")
    api_schema.validate()
    operations = [result.ok() for result in api_schema.get_all_operations()]
    labels = {operation.label for operation in operations}
    assert {"POST /v1/workflows", "GET /v1/workflows/{workflow_id}", "GET /readyz"} <= labels
    assert len(labels) == len(operations) >= 20


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_operation_answers_with_a_server_error(
    api_schema: schemathesis.BaseSchema, mode: GenerationMode
) -> None:
    """Every operation answers generated requests, valid or not, without a 5xx."""
    failures = {}
    for result in api_schema.get_all_operations():
        operation = result.ok()
        failure = server_errors(operation, mode)
        if failure is not None:
            failures[operation.label] = failure
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


def test_generated_bodies_against_live_workflows_cause_no_server_error(
    api_factory: Callable[..., ApiServer], processor_thread: Processor
) -> None:
    """With path parameters naming live workflows, generated requests still never get a 5xx."""
    url = api_factory().url
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    with httpx.Client(base_url=url, timeout=30) as api:
        assert api.post("/v1/metadata/workflows", json=LIVE_FLOW).status_code == 201
        for index, _ in enumerate(operations):
            started = api.post(
                "/v1/workflows", json={"name": "live", "workflowId": f"live-{index}"}
            )
            assert started.status_code == 201, started.text
        assert_eventually(
            lambda: len(api.get("/v1/human-tasks").json()["results"]) == len(operations),
            timeout=30,
        )
    fixed = {"name": "live", "version": 1, "task_ref": "review"}
    failures = {}
    for index, operation in enumerate(operations):
        names = {parameter.name for parameter in operation.path_parameters}
        values = {**fixed, "workflow_id": f"live-{index}"}
        path_parameters = {name: values[name] for name in names if name in values}
        failure = server_errors(operation, GenerationMode.POSITIVE, path_parameters)
        if failure is not None:
            failures[operation.label] = failure
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
