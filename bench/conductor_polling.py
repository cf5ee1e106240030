"""Kafka-native workers against HTTP-polling workers: the same workflows, side by side.

One processor; N workflows of K no-op worker tasks (bench/throughput.py's chain). First a
Kafka-native worker process runs them; then it stops and HTTP pollers (threads of this process,
each batch-polling ``GET /api/tasks/poll/batch`` and answering ``POST /api/tasks``) run them
through an ``orchestrator api`` process. Prints tasks/s and per-task latency (TaskScheduled to
TaskCompleted, both stamped by the processor) for each.
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from common import bench_settings
from throughput import chain, report

from orchestrator.client import Client
from orchestrator.dsl import parse_definition
from orchestrator.log.broker import free_port
from orchestrator.stack import LocalStack


def poll_loop(url: str, name: str, stop: threading.Event, batch: int) -> None:
    """An HTTP worker: batch-poll ``bench_step``, answer each task with n + 1."""
    params: dict[str, Any] = {"count": batch, "timeout": 200, "workerid": name}
    with httpx.Client(base_url=url, timeout=30) as api:
        while not stop.is_set():
            for task in api.get("/api/tasks/poll/batch/bench_step", params=params).json():
                body = {
                    "workflowInstanceId": task["workflowInstanceId"],
                    "taskId": task["taskId"],
                    "status": "COMPLETED",
                    "outputData": {"n": int(task["inputData"].get("n", 0)) + 1},
                    "workerId": name,
                }
                api.post("/api/tasks", json=body).raise_for_status()


def run_phase(client: Client, label: str, workflows: int, tasks: int) -> None:
    """Warm up with one workflow, then start ``workflows`` at once and report."""
    client.wait(client.start("bench_chain", version=tasks, input={"n": 0}), timeout=120)
    print(f"{label}: {workflows} workflows x {tasks} tasks started at once")
    began = time.monotonic()
    ids = [client.start("bench_chain", version=tasks, input={"n": i}) for i in range(workflows)]
    report(client.settings, set(ids), began, tasks)


def main() -> None:
    """Run both phases and print their figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workflows", type=int, default=300)
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument("--pollers", type=int, default=8)
    parser.add_argument("--batch", type=int, default=10)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        bench_settings(state_dir=Path(tmp)) as settings,
        LocalStack(settings, embedded_broker=False) as stack,
    ):
        logs = Path(tmp)
        stack.spawn("processor", "processor", "--instance-id", "bench", log_path=logs / "p.log")
        worker = stack.spawn(
            "worker", "worker", "workers.bench", "--concurrency", "32", log_path=logs / "w.log"
        )
        client = Client(settings)
        client.register([parse_definition(chain(args.tasks))])
        run_phase(
            client, "kafka-native worker (1 process, concurrency 32)", args.workflows, args.tasks
        )
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)

        port = free_port()
        stack.spawn(
            "api", "api", "--port", str(port), "--read-dir", str(logs / "read"), "--no-auth",
            log_path=logs / "api.log",
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        stop = threading.Event()
        pollers = [
            threading.Thread(target=poll_loop, args=(url, f"p{i}", stop, args.batch), daemon=True)
            for i in range(args.pollers)
        ]
        for poller in pollers:
            poller.start()
        label = f"HTTP pollers ({args.pollers} threads, batch {args.batch}, via the API)"
        try:
            run_phase(client, label, args.workflows, args.tasks)
        finally:
            stop.set()
            for poller in pollers:
                poller.join(10)
        client.close()


if __name__ == "__main__":
    main()
