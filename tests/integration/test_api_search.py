"""Searching and counting runs over HTTP: search, waiting starts and the metrics summary.

Each test asserts over every run the API knows (totals, pages, counts), so it has topics, a
processor and an API of its own; the other operations are in ``test_api_operations``.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from orchestrator.processor.loop import Processor
from tests.integration.test_api_operations import registered, run, search, start, waiting_at

pytestmark = pytest.mark.integration


@pytest.fixture
def api(api_server: str, processor_thread: Processor) -> Iterator[httpx.Client]:
    """A client of an API (auth off) with a processor running and every definition registered,
    on the test's own topics."""
    yield from registered(api_server)


# Search ----------------------------------------------------------------------------------------


def test_search_filters_pages_and_sorts(api: httpx.Client) -> None:
    """Search filters by name, status, correlation id, time and text; pages and sorts by start."""
    quick = [f"quick-{i:02d}" for i in range(8)]
    gated = [f"gated-{i:02d}" for i in range(4)]
    for i, workflow_id in enumerate(quick):
        body = {"n": i, "city": "Lisbon" if i % 2 else "Porto"}
        started = api.post(
            "/v1/workflows",
            params={"wait": "true"},
            json={
                "name": "quick",
                "workflowId": workflow_id,
                "input": body,
                "correlationId": "batch-a" if i < 3 else None,
            },
        )
        assert started.json()["status"] == "COMPLETED", started.text
    for workflow_id in gated:
        start(api, "gated", workflow_id, correlationId="batch-b", input={"city": "Faro"})
    for workflow_id in gated:
        waiting_at(api, workflow_id, "gate")

    total, newest_first = search(api)
    assert total == 12
    assert set(newest_first) == set(quick + gated)
    rows = api.get("/v1/workflows", params={"limit": 100}).json()["results"]
    starts = [row["startTime"] for row in rows]
    assert starts == sorted(starts, reverse=True)
    assert "text" not in rows[0]
    assert search(api, sort="startTime:asc") == (12, newest_first[::-1])
    assert search(api, sort="startTime:desc") == (12, newest_first)

    pages = [search(api, offset=offset, limit=5) for offset in (0, 5, 10, 15)]
    assert [total for total, _ in pages] == [12, 12, 12, 12]
    assert [len(ids) for _, ids in pages] == [5, 5, 2, 0]
    assert [i for _, ids in pages for i in ids] == newest_first

    assert search(api, name="gated") == (4, [i for i in newest_first if i in gated])
    assert search(api, status="RUNNING") == (4, [i for i in newest_first if i in gated])
    assert search(api, status="COMPLETED")[0] == 8
    assert search(api, name="quick", status="RUNNING") == (0, [])
    assert search(api, correlationId="batch-a") == (3, [i for i in newest_first if i in quick[:3]])
    assert search(api, correlationId="batch-b", status="RUNNING")[0] == 4
    assert set(search(api, q="LISBON")[1]) == {quick[i] for i in (1, 3, 5, 7)}
    assert set(search(api, q="faro", name="gated")[1]) == set(gated)
    assert search(api, q="quick-07") == (1, ["quick-07"])

    by_start = sorted(zip(starts, [row["workflowId"] for row in rows], strict=True))
    pivot = by_start[6][0]
    after = {i for t, i in by_start if t >= pivot}
    before = {i for t, i in by_start if t < pivot}
    assert set(search(api, startedAfter=pivot)[1]) == after
    assert set(search(api, startedBefore=pivot)[1]) == before
    assert len(after) + len(before) == 12
    assert search(api, startedAfter=pivot, startedBefore=pivot) == (0, [])

    for bad in ({"sort": "name:asc"}, {"status": "SLEEPING"}, {"limit": 0}, {"offset": -1}):
        assert api.get("/v1/workflows", params=bad).status_code in (400, 422), bad


# Waiting starts and metrics --------------------------------------------------------------------


def test_a_waiting_start_returns_the_output_and_metrics_count_it(api: httpx.Client) -> None:
    """``wait=true`` answers with COMPLETED and the output; the metrics summary counts the runs."""
    for n in (1, 2, 21):
        response = api.post(
            "/v1/workflows", params={"wait": "true"}, json={"name": "quick", "input": {"n": n}}
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["status"], body["output"]) == ("COMPLETED", {"n": n * 2})
        assert run(api, body["workflowId"])["output"] == {"n": n * 2}

    summary = api.get("/v1/metrics/summary").json()
    workflows = {w["name"]: w for w in summary["workflows"]}
    assert {k: workflows["quick"][k] for k in ("started", "completed", "running")} == {
        "started": 3,
        "completed": 3,
        "running": 0,
    }
    assert workflows["quick"]["successRate"] == 1.0
    tasks = {t["taskType"]: t for t in summary["tasks"]}
    assert (tasks["INLINE"]["scheduled"], tasks["INLINE"]["completed"]) == (3, 3)
    assert sum(minute["workflowsCompleted"] for minute in summary["throughput"]) == 3
