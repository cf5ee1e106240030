"""The web UI in Chromium against the real broker, a real processor and the real API."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from orchestrator.processor.loop import Processor
from tests.helpers import assert_eventually
from tests.ui.conftest import ARTIFACTS, ConsoleLog

pytestmark = pytest.mark.integration

REVIEW_FLOW = {
    "name": "ui_review",
    "version": 1,
    "description": "fork, switch, human review: the UI test's workflow",
    "inputParameters": ["kind", "topic"],
    "tasks": [
        {
            "name": "shape",
            "taskReferenceName": "shape",
            "type": "INLINE",
            "inputParameters": {
                "evaluatorType": "javascript",
                "expression": "({title: $.topic.toUpperCase()})",
                "topic": "${workflow.input.topic}",
            },
        },
        {
            "name": "fan",
            "taskReferenceName": "fan",
            "type": "FORK_JOIN",
            "forkTasks": [
                [{"name": "left", "taskReferenceName": "left", "type": "NOOP"}],
                [
                    {
                        "name": "right",
                        "taskReferenceName": "right",
                        "type": "SET_VARIABLE",
                        "inputParameters": {"side": "right"},
                    }
                ],
            ],
        },
        {"name": "fan_join", "taskReferenceName": "fan_join", "type": "JOIN"},
        {
            "name": "route",
            "taskReferenceName": "route",
            "type": "SWITCH",
            "evaluatorType": "value-param",
            "expression": "kind",
            "inputParameters": {"kind": "${workflow.input.kind}"},
            "decisionCases": {
                "express": [{"name": "express", "taskReferenceName": "express", "type": "NOOP"}],
                "standard": [{"name": "standard", "taskReferenceName": "standard", "type": "NOOP"}],
            },
            "defaultCase": [{"name": "fallback", "taskReferenceName": "fallback", "type": "NOOP"}],
        },
        {
            "name": "review",
            "taskReferenceName": "review",
            "type": "HUMAN",
            "inputParameters": {
                "assignee": "alice",
                "group": "editors",
                "draft": "${shape.output.result}",
            },
        },
    ],
    "outputParameters": {"approved": "${review.output.approved}"},
}
IN_PROGRESS_FILL = "rgb(219, 234, 254)"  # --bg of .st-IN_PROGRESS in app.css
COMPLETED_FILL = "rgb(220, 252, 231)"  # --bg of .st-COMPLETED


def _shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _fill(page: Any, ref: str) -> str:
    return str(
        page.locator(f'svg.graph g.node[data-ref="{ref}"] .shape').evaluate(
            "el => getComputedStyle(el).fill"
        )
    )


def _start_from_form(page: Any, correlation_id: str) -> str:
    from playwright.sync_api import expect

    page.get_by_role("button", name="Start workflow…").click()
    form = page.locator("form.start-form")
    expect(form.locator("select[name=definition] option[value=ui_review]")).to_have_count(1)
    form.locator("select[name=definition]").select_option("ui_review")
    form.locator("input[name=correlationId]").fill(correlation_id)
    form.locator("textarea[name=input]").fill(json.dumps({"kind": "express", "topic": "kafka"}))
    form.get_by_role("button", name="Start", exact=True).click()
    started = form.locator("a[data-started]")
    expect(started).to_be_visible()
    return str(started.get_attribute("data-started"))


def _check_detail_running(page: Any, workflow_id: str, log: ConsoleLog) -> None:
    from playwright.sync_api import expect

    graph = page.locator("svg.graph")
    expect(graph).to_be_visible()
    for ref in ("shape", "fan", "left", "right", "fan_join", "route", "express", "standard"):
        expect(graph.locator(f'g.node[data-ref="{ref}"]')).to_have_count(1)
    for label in ("express", "standard", "default"):
        expect(graph.locator("g.case-label text", has_text=label)).to_have_count(1)
    review = graph.locator('g.node[data-ref="review"]')
    expect(review).to_have_attribute("data-type", "HUMAN")
    expect(review).to_have_attribute("data-status", "IN_PROGRESS")
    assert _fill(page, "review") == IN_PROGRESS_FILL
    expect(graph.locator('g.node[data-ref="shape"]')).to_have_attribute("data-status", "COMPLETED")
    expect(graph.locator('g.node[data-ref="express"]')).to_have_attribute(
        "data-status", "COMPLETED"
    )
    expect(graph.locator('g.node[data-ref="standard"]')).to_have_attribute(
        "data-status", "NOT_REACHED"
    )
    expect(page.locator(".head .badge")).to_have_text("RUNNING")
    _shot(page, "03-detail-running")

    page.locator("[data-tab=Timeline]").click()
    expect(page.locator('li.event[data-type="WorkflowStarted"]')).to_have_count(1)
    expect(page.locator("svg.gantt g.bar").first).to_be_visible()
    _shot(page, "04-detail-timeline")
    page.locator("[data-tab=Tasks]").click()

    # A refused operation shows the API's reason (the browser logs the 409 response).
    log.expect(r"status of 409")
    page.locator("button[data-op=resume]").click()
    expect(page.locator(".actions .message.error")).to_contain_text("cannot resume")
    _shot(page, "05-detail-refused-resume")


def _approve_in_inbox(page: Any, workflow_id: str) -> None:
    from playwright.sync_api import expect

    page.locator("a[data-nav=inbox]").click()
    page.locator("input[name=assignee]").fill("alice")
    page.get_by_role("button", name="Filter").click()
    card = page.locator(f'article.human-task[data-workflow-id="{workflow_id}"]')
    expect(card).to_be_visible()
    expect(card).to_contain_text("assignee: alice")
    expect(card).to_contain_text("KAFKA")
    _shot(page, "06-inbox")
    card.locator("button[data-action=approve]").click()
    expect(card.locator(".message.ok")).to_contain_text("Approved")
    _shot(page, "07-inbox-approved")


@pytest.mark.timeout(120)
def test_start_watch_approve_and_measure(
    api_server: str, processor_thread: Processor, browser_page: tuple[Any, ConsoleLog]
) -> None:
    """Start a fork/switch/human workflow in the UI, watch its graph, approve it, see metrics."""
    from playwright.sync_api import expect

    page, log = browser_page
    with httpx.Client(base_url=api_server, timeout=10) as api:
        registered = api.post("/v1/metadata/workflows", json=REVIEW_FLOW)
        assert registered.status_code == 201, registered.text
        assert_eventually(
            lambda: api.get("/v1/metadata/workflows/ui_review/1").status_code == 200, timeout=20
        )

    page.goto(f"{api_server}/")
    expect(page).to_have_url(f"{api_server}/ui/#/workflows")
    expect(page.locator("#auth-banner")).to_have_text(
        "Authentication is disabled (development mode)"
    )
    _shot(page, "01-list")

    workflow_id = _start_from_form(page, f"ui-{uuid.uuid4().hex[:8]}")
    row = page.locator(f'tr[data-workflow-id="{workflow_id}"]')
    expect(row).to_be_visible()  # the list polls until the read model has the run
    _shot(page, "02-started")
    row.locator("a.mono").click()
    expect(page).to_have_url(f"{api_server}/ui/#/workflows/{workflow_id}")
    _check_detail_running(page, workflow_id, log)

    _approve_in_inbox(page, workflow_id)

    page.goto(f"{api_server}/ui/#/workflows/{workflow_id}")
    expect(page.locator(".head .badge")).to_have_text("COMPLETED")
    review = page.locator('svg.graph g.node[data-ref="review"]')
    expect(review).to_have_attribute("data-status", "COMPLETED")
    assert _fill(page, "review") == COMPLETED_FILL
    page.locator('tr.task-row[data-ref="review"]').click()
    expect(page.locator("tr.task-detail:not([hidden])")).to_contain_text('"approved": true')
    _shot(page, "08-detail-completed")

    page.locator("a[data-nav=metrics]").click()
    expect(page.locator('[data-chart="throughput"] svg polyline')).to_have_count(2)
    expect(page.locator('[data-chart="workflow-latency"] svg rect.mark').first).to_be_visible()
    expect(page.locator("table.metrics").first).to_contain_text("ui_review")
    _shot(page, "09-metrics")

    assert log.unexpected() == [], f"console errors: {log.unexpected()}"
