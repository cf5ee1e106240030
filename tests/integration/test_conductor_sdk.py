"""Conductor's own Python SDK (conductor-python), unchanged, against ``orchestrator api``.

Its metadata, workflow and task clients, and its TaskHandler running a decorated worker that
polls over HTTP. Skipped when the SDK is not installed.
"""

# No ``from __future__ import annotations``: the SDK maps task input to a worker function's
# parameters by their annotations at run time, which must be types, not strings.
from typing import Any

import pytest

pytest.importorskip("conductor.client")

from conductor.client.automator.task_handler import TaskHandler
from conductor.client.configuration.configuration import Configuration
from conductor.client.http.models import (
    StartWorkflowRequest,
    TaskDef,
    TaskResult,
    WorkflowDef,
    WorkflowTask,
)
from conductor.client.http.rest import ApiException
from conductor.client.orkes_clients import OrkesClients
from conductor.client.worker.worker_task import worker_task

from orchestrator.processor.loop import Processor
from tests.helpers import assert_eventually
from tests.integration.conftest import ApiServer

pytestmark = [
    pytest.mark.integration,
    # The SDK's own serializer calls its deprecated ``owner_app`` property.
    pytest.mark.filterwarnings("ignore:Call to deprecated:DeprecationWarning"),
]
Json = Any
HANDLER_WAIT_S = 90.0  # spawning the SDK's worker processes takes seconds on a busy machine


@worker_task(task_definition_name="sdk_double", poll_interval_millis=50)
def sdk_double(n: int) -> dict[str, int]:
    """The SDK worker of ``sdk_double``: twice its input (runs in a TaskHandler process)."""
    return {"n": n * 2}


@pytest.fixture(scope="module")
def api_server(module_api: ApiServer) -> str:
    """The base URL of the API the module's tests share (auth off); their runs keep apart."""
    return module_api.url


@pytest.fixture(scope="module")
def clients(api_server: str, module_processor: Processor) -> OrkesClients:
    """The SDK's clients, configured for the API under test, with the definitions registered."""
    clients = OrkesClients(Configuration(server_api_url=api_server + "/api"))
    review = WorkflowTask(name="review", task_reference_name="review", type="HUMAN")
    finish = WorkflowTask(
        name="finish",
        task_reference_name="finish",
        type="INLINE",
        input_parameters={
            "evaluatorType": "javascript",
            "expression": "({approved: $.approved})",
            "approved": "${review.output.approved}",
        },
    )
    definition = WorkflowDef(
        name="sdk_review",
        version=1,
        tasks=[review, finish],
        output_parameters={"approved": "${finish.output.result.approved}"},
    )
    metadata = clients.get_metadata_client()
    metadata.register_workflow_def(definition, overwrite=True)
    metadata.register_task_def(TaskDef(name="sdk_task", retry_count=1))
    return clients


def read_run(clients: OrkesClients, workflow_id: str) -> Any:
    """The run as the SDK reads it; a 404 (the read model has not folded its start yet) fails
    as an assertion, so that ``assert_eventually`` tries again."""
    try:
        return clients.get_workflow_client().get_workflow(workflow_id, include_tasks=True)
    except ApiException as exc:
        if exc.status != 404:
            raise
        raise AssertionError(f"{workflow_id} is not readable yet") from exc


def status_of(clients: OrkesClients, workflow_id: str, wanted: str) -> Any:
    """Wait until the SDK reads the run with status ``wanted``; return the Workflow."""

    def current() -> Any:
        run = read_run(clients, workflow_id)
        assert run.status == wanted, run.status
        return run

    return assert_eventually(current, timeout=30)


def waiting_review(clients: OrkesClients, workflow_id: str) -> Any:
    """Wait until the run's HUMAN task waits; return the SDK's Task."""

    def current() -> Any:
        run = read_run(clients, workflow_id)
        tasks = [t for t in run.tasks if t.reference_task_name == "review"]
        assert tasks, "review not scheduled yet"
        assert tasks[-1].status == "IN_PROGRESS", tasks[-1].status
        return tasks[-1]

    return assert_eventually(current, timeout=30)


def test_metadata_through_the_sdk(clients: OrkesClients) -> None:
    """The SDK's MetadataClient reads back what it registered."""
    metadata = clients.get_metadata_client()
    definition = metadata.get_workflow_def("sdk_review")
    assert definition.name == "sdk_review"
    assert [t.task_reference_name for t in definition.tasks] == ["review", "finish"]
    assert "sdk_review" in {d.name for d in metadata.get_all_workflow_defs()}
    assert metadata.get_task_def("sdk_task").retry_count == 1


def test_start_read_and_complete_a_human_task(clients: OrkesClients) -> None:
    """Start, read the Workflow and its status, complete the HUMAN task: the run completes."""
    workflows = clients.get_workflow_client()
    workflow_id = workflows.start_workflow(
        StartWorkflowRequest(name="sdk_review", input={"order": 7}, correlation_id="sdk-7")
    )
    task = waiting_review(clients, workflow_id)
    status = workflows.get_workflow_status(workflow_id, include_output=True)
    assert (status.status, status.correlation_id) == ("RUNNING", "sdk-7")

    result = TaskResult(
        workflow_instance_id=workflow_id,
        task_id=task.task_id,
        status="COMPLETED",
        output_data={"approved": True},
    )
    assert clients.get_task_client().update_task(result) == task.task_id
    run = status_of(clients, workflow_id, "COMPLETED")
    assert run.output == {"approved": True}
    assert run.input == {"order": 7}


def test_terminate_retry_and_update_by_reference_name(clients: OrkesClients) -> None:
    """Terminate, retry, pause and resume; the SDK's update by reference name completes the run."""
    workflows = clients.get_workflow_client()
    workflow_id = workflows.start_workflow_by_name("sdk_review", {"order": 8})
    waiting_review(clients, workflow_id)
    workflows.terminate_workflow(workflow_id, reason="not today")
    assert status_of(clients, workflow_id, "TERMINATED").reason_for_incompletion == "not today"

    workflows.retry_workflow(workflow_id)
    waiting_review(clients, workflow_id)
    workflows.pause_workflow(workflow_id)
    status_of(clients, workflow_id, "PAUSED")
    workflows.resume_workflow(workflow_id)
    status_of(clients, workflow_id, "RUNNING")

    # The SDK wraps the output as {"result": ...}; the definition reads ``approved``.
    clients.get_task_client().update_task_by_ref_name(
        workflow_id, "review", "COMPLETED", {"approved": "yes"}
    )
    run = status_of(clients, workflow_id, "COMPLETED")
    assert run.output == {"approved": None}
    review = next(t for t in run.tasks if t.reference_task_name == "review")
    assert review.output_data == {"result": {"approved": "yes"}}


def test_execute_and_update_synchronously(clients: OrkesClients) -> None:
    """The SDK's synchronous execute answers at the HUMAN task; its sync update, the run."""
    workflows = clients.get_workflow_client()
    started = workflows.execute_workflow(
        StartWorkflowRequest(name="sdk_review", version=1, input={"order": 9}),
        request_id="req-9",
        wait_until_task_ref="review",
        wait_for_seconds=20,
    )
    assert started.status == "RUNNING"
    assert [t.reference_task_name for t in started.tasks] == ["review"]
    run = clients.get_task_client().update_task_sync(
        started.workflow_id, "review", "COMPLETED", {"approved": True}
    )
    assert run.workflow_id == started.workflow_id
    assert status_of(clients, started.workflow_id, "COMPLETED").output == {"approved": True}


def test_errors_reach_the_sdk_as_api_exceptions(clients: OrkesClients) -> None:
    """An unknown run is a 404 the SDK raises as its ApiException."""
    with pytest.raises(ApiException) as caught:
        clients.get_workflow_client().get_workflow("no-such-run")
    assert caught.value.status == 404


def test_task_handler_runs_simple_tasks(clients: OrkesClients, api_server: str) -> None:
    """The SDK's TaskHandler polls over HTTP and completes the SIMPLE tasks of a workflow."""
    steps = [
        WorkflowTask(
            name="sdk_double",
            task_reference_name=f"d{i}",
            type="SIMPLE",
            input_parameters={"n": "${workflow.input.n}" if i == 0 else "${d0.output.n}"},
        )
        for i in range(2)
    ]
    definition = WorkflowDef(
        name="sdk_simple", version=1, tasks=steps, output_parameters={"n": "${d1.output.n}"}
    )
    clients.get_metadata_client().register_workflow_def(definition, overwrite=True)
    workflows = clients.get_workflow_client()
    workflow_id = workflows.start_workflow(StartWorkflowRequest(name="sdk_simple", input={"n": 3}))

    handler = TaskHandler(
        configuration=Configuration(server_api_url=api_server + "/api"),
        scan_for_annotated_workers=True,
        monitor_processes=False,
    )
    handler.start_processes()
    try:

        def completed() -> Any:
            try:
                run = workflows.get_workflow(workflow_id, include_tasks=True)
            except ApiException as exc:  # 404 until the read model folded the start
                raise AssertionError(exc.status) from exc
            if run.status == "FAILED":
                pytest.fail(f"the run failed: {run.reason_for_incompletion}")
            assert run.status == "COMPLETED", run.status
            return run

        run = assert_eventually(completed, timeout=HANDLER_WAIT_S)
    finally:
        handler.stop_processes()
    assert run.output == {"n": 12}
    assert [t.status for t in run.tasks] == ["COMPLETED", "COMPLETED"]
