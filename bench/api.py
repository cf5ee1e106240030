"""The HTTP API under load: start-workflow requests/s and latency, and the read model's lag.

Part 1, start rate: an ``orchestrator api`` process on the embedded broker takes
``POST /v1/workflows`` from a load generator in another process: ``wrk`` when installed, and
for comparison ``api_load.py``'s asyncio generators (hand-written HTTP/1.1, and httpx). Closed
loops over 64 keep-alive connections for a warm-up and a measured window, plus one unloaded run
(one connection) and one open-loop run at a fixed 2,000 starts/s, whose latencies count from
when each request was due. Every 201 means the broker acknowledged the request record.
Four configurations, each on a fresh broker: the API alone (no processor: only the API and the
broker work) and the API with a processor starting the workflows (one SET_VARIABLE task each,
so the processor's share is small), each without authentication and with an HS256 bearer
token (JWT verification on every request). Per run it prints starts/s, latency percentiles,
the cores each process kept busy and the API's and broker's CPU microseconds per start, so the
reader sees what was saturated; with a processor, how long after the load it caught up.

Part 2, read-model lag: bench/throughput.py's workload (N workflows x K worker tasks started
at once, one processor, one worker process) with an API attached. ``GET /v1/status`` is sampled
every 100 ms (``lag.applyDelayMs``: now minus the ``at`` of the last event folded; and
``lag.records``), and every 20th workflow is a probe, polled every 20 ms until the API shows it
ended. A probe's visibility delay is that moment minus its terminal event's ``at`` (the
processor's stamp, read back from ``/history``): it includes the processor's transaction
commit, the projector's poll and its RocksDB write.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from api_load import wrk, wrk_available
from common import bench_settings, percentile
from throughput import chain

from orchestrator.api.auth import issue_hs256_token
from orchestrator.client import Client
from orchestrator.config import Settings
from orchestrator.dsl import parse_definition
from orchestrator.engine.records import TERMINAL_EVENTS
from orchestrator.log.broker import free_port
from orchestrator.log.reader import read_events
from orchestrator.stack import LocalStack

LIGHT = {
    "name": "bench_light",
    "tasks": [
        {
            "name": "set",
            "taskReferenceName": "set",
            "type": "SET_VARIABLE",
            "inputParameters": {"n": "${workflow.input.n}"},
        }
    ],
}
BODY = '{"name": "bench_light", "input": {"n": 1}}'
PROBE = "api-bench-probe"
SECRET = "bench-only-hs256-secret-" + "0123456789abcdef" * 2
ENDED = {"COMPLETED", "FAILED", "TIMED_OUT", "TERMINATED", "COMPENSATION_FAILED"}
TERMINAL_TYPES = {kind.__name__ for kind in TERMINAL_EVENTS}
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Api:
    """A running ``orchestrator api`` child process."""

    url: str
    process: subprocess.Popen[bytes]
    token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        """The headers every bench request sends."""
        return {"authorization": f"Bearer {self.token}"} if self.token else {}


def spawn_api(stack: LocalStack, tmp: Path, *, auth: bool) -> Api:
    """Start an API process with its own read model; return once it reports ready."""
    port, name = free_port(), f"api-{uuid.uuid4().hex[:6]}"
    auth_args = ["--hs256-secret", SECRET] if auth else ["--no-auth"]
    process = stack.spawn(
        name, "api", "--port", str(port), "--read-dir", str(tmp / name), *auth_args,
        log_path=tmp / f"{name}.log",
    )  # fmt: skip
    token = issue_hs256_token(SECRET, "bench", ["operator"], ["*"]) if auth else ""
    api = Api(f"http://127.0.0.1:{port}", process, token)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{api.url}/readyz", timeout=2).status_code == 200:
                return api
        if process.poll() is not None:
            break
        time.sleep(0.2)
    log = (tmp / f"{name}.log").read_text()[-2000:]
    raise RuntimeError(f"the API did not become ready:\n{log}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM a child's process group and wait for it."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(15)


# CPU accounting --------------------------------------------------------------------------


def broker_pid() -> int | None:
    """The embedded broker (a ``tansu`` child of this process), if there is one."""
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, IndexError):
            if entry.name.isdigit() and (entry / "comm").read_text().startswith("tansu"):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
                    return int(entry.name)
    return None


def _process_cpu(pid: int) -> float:
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS
    return 0.0


def _machine_busy() -> float:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICKS  # all but idle and iowait


@dataclass
class CpuMeter:
    """CPU seconds used by named processes (and this process's reaped children) over a span."""

    pids: dict[str, int | None]
    children: str | None = "load generator"  # what this process's reaped children are
    began: float = field(default_factory=time.monotonic)
    start: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.start = self._sample()

    def _sample(self) -> dict[str, float]:
        times = os.times()
        sample = {name: _process_cpu(pid) for name, pid in self.pids.items() if pid}
        if self.children:
            sample[self.children] = times.children_user + times.children_system
        sample["machine"] = _machine_busy()
        return sample

    def report(self, requests: int = 0) -> str:
        """Cores busy per process since the meter started (and CPU per request), printable."""
        end, seconds = self._sample(), time.monotonic() - self.began
        used = {name: end[name] - self.start[name] for name in end}
        cores = [f"{name} {used[name] / seconds:.2f}" for name in used if name != "machine"]
        line = f"cpu (cores busy): {', '.join(cores)}; machine {used['machine'] / seconds:.2f}"
        line += f" of {os.cpu_count()}"
        if requests:
            per = [f"{name} {used[name] * 1e6 / requests:.0f}" for name in ("api", "broker")]
            line += f"; us/start: {', '.join(per)}"
        return line


# Part 1: start rate ----------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """One load run: a generator (wrk, python-raw or python-httpx), connections, and a rate."""

    generator: str
    concurrency: int
    rate: float = 0.0  # 0: closed loops
    duration: float | None = None  # None: --duration

    @property
    def label(self) -> str:
        """How the run is named in the output."""
        pace = f" at {self.rate:,.0f}/s" if self.rate else ""
        return f"{self.generator} -c{self.concurrency}{pace}"


def plan(args: argparse.Namespace, *, auth: bool, processor: bool) -> list[Load]:
    """The runs of one configuration; the generator comparison only with the API alone."""
    main = "wrk" if wrk_available() else "python-raw"
    loads = [Load(main, args.concurrency)]
    if not (auth or processor):
        loads.insert(0, Load(main, 1, duration=3.0))  # unloaded: the floor of the latency
        loads += [Load("python-raw", args.concurrency), Load("python-httpx", args.concurrency)]
    if not (auth and processor):
        loads.append(Load("python-raw", args.concurrency, rate=args.rate))
    return loads


def python_load(api: Api, load: Load, args: argparse.Namespace) -> dict[str, Any]:
    """Run api_load.py in its own process; return its JSON result."""
    argv = [
        sys.executable, str(Path(__file__).with_name("api_load.py")), f"{api.url}/v1/workflows",
        "--body", BODY, "--token", api.token, "--concurrency", str(load.concurrency),
        "--duration", str(load.duration or args.duration), "--warmup", str(args.warmup),
        "--client", load.generator.removeprefix("python-"), "--rate", str(load.rate),
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure_starts(api: Api, load: Load, args: argparse.Namespace, label: str) -> int:
    """One load run against ``api``; print its figures; return how many starts it got."""
    meter = CpuMeter({"api": api.process.pid, "broker": broker_pid(), **args.extra_pids})
    if load.generator == "wrk":
        result = wrk(
            f"{api.url}/v1/workflows", BODY, token=api.token, concurrency=load.concurrency,
            duration=load.duration or args.duration, warmup=args.warmup,
        )  # fmt: skip
    else:
        result = python_load(api, load, args)
    cpu = meter.report(result["accepted"])
    rate = (result["requests"] - result["errors"]) / result["seconds"]
    print(
        f"{label}, {load.label}, {result['seconds']:.0f} s: {rate:,.0f} starts/s, "
        f"p50 {result['p50']:.1f} ms, p95 {result['p95']:.1f} ms, p99 {result['p99']:.1f} ms, "
        f"max {result['max']:.0f} ms, errors {result['errors']}"
    )
    print(f"  {cpu}")
    return int(result["accepted"])


def completed(api: Api, name: str) -> int:
    """How many ``name`` workflows the read model has seen complete (its metrics)."""
    summary = httpx.get(f"{api.url}/v1/metrics/summary", headers=api.headers).json()
    return int({w["name"]: w for w in summary["workflows"]}.get(name, {}).get("completed", 0))


def wait_completed(api: Api, name: str, expected: int, timeout: float = 300) -> bool:
    """Wait until ``expected`` ``name`` workflows completed; False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while completed(api, name) < expected:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def wait_drained(api: Api, expected: int, load_ended: float) -> None:
    """Wait until the processor completed ``expected`` bench_light workflows; print how long."""
    if wait_completed(api, "bench_light", expected):
        done = f"{time.monotonic() - load_ended:.1f} s"
        print(f"  processor: all {expected:,} workflows completed {done} after the load ended")
    else:
        print(f"  processor: not all {expected:,} workflows completed in 300 s")


def start_rate(args: argparse.Namespace, *, processor: bool, auth: bool) -> None:
    """Part 1 on a fresh broker (the in-memory broker slows as it fills): one configuration."""
    where = "API + processor" if processor else "API alone (no processor)"
    label = f"start rate, {where}, {'HS256 token' if auth else 'no auth'}"
    with (
        tempfile.TemporaryDirectory() as tmp,
        bench_settings(state_dir=Path(tmp)) as settings,
        LocalStack(settings, embedded_broker=False) as stack,
    ):
        client = Client(settings)
        client.register([parse_definition(LIGHT)])
        args.extra_pids, expected = {}, 0
        if processor:
            child = stack.spawn("processor", "processor", log_path=Path(tmp) / "p.log")
            args.extra_pids = {"processor": child.pid}
            client.wait(client.start("bench_light", input={"n": 0}), timeout=120)
            expected = 1
        api = spawn_api(stack, Path(tmp), auth=auth)
        for load in plan(args, auth=auth, processor=processor):
            expected += measure_starts(api, load, args, label)
            if processor:
                wait_drained(api, expected, time.monotonic())
        stop(api.process)


# Part 2: read-model lag ------------------------------------------------------------------


class StatusSampler(threading.Thread):
    """Samples ``GET /v1/status`` every 100 ms until stopped, from the workload's first fold.

    ``applyDelayMs`` is the delay of the last event the projector folded, so samples taken
    before the workload's first fold (still showing the read model's catch-up) are dropped.
    """

    def __init__(self, api: Api) -> None:
        super().__init__(daemon=True)
        self.api = api
        self.delays: list[float] = []
        self.records: list[float] = []
        self.baseline: int | None = None  # eventsFolded when the workload started
        self.halt = threading.Event()

    def run(self) -> None:
        """Sample until ``halt`` is set."""
        with httpx.Client(base_url=self.api.url, headers=self.api.headers) as http:
            while not self.halt.wait(0.1):
                status = http.get("/v1/status").json()
                if self.baseline is None:
                    self.baseline = status["eventsFolded"]
                if status["eventsFolded"] > self.baseline:
                    self.delays.append(status["lag"]["applyDelayMs"])
                    self.records.append(status["lag"]["records"])


class VisibilityWatcher(threading.Thread):
    """Notes when each probe workflow first shows a terminal status in the API.

    The probes carry one correlation id, so one ``GET /v1/workflows?correlationId=...`` every
    20 ms covers all of them: they end within a second of each other, and 50 separate GETs
    every 20 ms (2,500/s) would be more than the API serves beside the processor and workers on
    two cores, so the polling would measure itself. A search row and ``GET /v1/workflows/{id}``
    come from one RocksDB write batch, so they become visible together.
    """

    def __init__(self, api: Api, probes: set[str]) -> None:
        super().__init__(daemon=True)
        self.api, self.probes = api, probes
        self.seen: dict[str, tuple[int, int]] = {}  # id -> (answer ms, answer - previous send)
        self.round_trips: list[float] = []

    def run(self) -> None:
        """Poll until every probe was seen ended (or ten minutes passed)."""
        params = {"correlationId": PROBE, "limit": len(self.probes)}
        deadline, previous = time.monotonic() + 600, _now_ms()
        with httpx.Client(base_url=self.api.url, headers=self.api.headers) as http:
            while len(self.seen) < len(self.probes) and time.monotonic() < deadline:
                sent = _now_ms()
                rows = http.get("/v1/workflows", params=params).json()["results"]
                answered = _now_ms()
                self.round_trips.append(answered - sent)
                for row in rows:
                    if row["status"] in ENDED and row["workflowId"] not in self.seen:
                        self.seen[row["workflowId"]] = (answered, answered - previous)
                previous = sent
                time.sleep(max(0.0, (sent + 20 - _now_ms()) / 1000))


def _now_ms() -> int:
    return int(time.time() * 1000)


def lag_under_throughput(args: argparse.Namespace) -> None:
    """Part 2: throughput.py's workload with an API attached; print the read model's lag."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        bench_settings(state_dir=Path(tmp)) as settings,
        LocalStack(settings, embedded_broker=False) as stack,
    ):
        processor = stack.spawn("processor", "processor", log_path=Path(tmp) / "p.log")
        worker = stack.spawn(
            "worker", "worker", "workers.bench", "--concurrency", "32",
            log_path=Path(tmp) / "w.log",
        )  # fmt: skip
        client = Client(settings)
        client.register([parse_definition(chain(args.tasks))])
        client.wait(client.start("bench_chain", version=args.tasks, input={"n": 0}), timeout=120)
        api = spawn_api(stack, Path(tmp), auth=False)
        args.extra_pids = {"processor": processor.pid, "worker": worker.pid}
        run_workload(client, api, args, settings)


def run_workload(client: Client, api: Api, args: argparse.Namespace, settings: Settings) -> None:
    """Start the workflows at once while sampling the status and watching the probes."""
    ids = [str(uuid.uuid4()) for _ in range(args.workflows)]
    probes = set(ids[:: max(1, args.workflows // args.samples)])
    print(
        f"read-model lag: {args.workflows} workflows x {args.tasks} worker tasks started at "
        f"once, API attached, {len(probes)} probes"
    )
    sampler, watcher = StatusSampler(api), VisibilityWatcher(api, probes)
    sampler.start()
    while sampler.baseline is None:
        time.sleep(0.01)
    watcher.start()
    pids = {"api": api.process.pid, "broker": broker_pid(), **args.extra_pids}
    meter = CpuMeter({**pids, "this bench": os.getpid()}, children=None)
    began = _now_ms()
    for i, workflow_id in enumerate(ids):
        probe = PROBE if workflow_id in probes else None
        client.start(
            "bench_chain", version=args.tasks, input={"n": i}, workflow_id=workflow_id,
            correlation_id=probe,
        )  # fmt: skip
    watcher.join()
    wait_completed(api, "bench_chain", args.workflows + 1)  # and the warm-up workflow
    cpu = meter.report()
    sampler.halt.set()
    sampler.join()
    ended = max(terminal_at(settings, set(ids)).values())
    print(f"workflows: {len(ids)} x {args.tasks} tasks in {(ended - began) / 1000:.2f} s")
    print(f"  {cpu}")
    report_lag(api, sampler, watcher)


def terminal_at(settings: Settings, ids: set[str]) -> dict[str, int]:
    """The ``at`` of each workflow's terminal event, read from the log once everything ended."""
    ends = {}
    for event in read_events(settings):
        if event.workflow_id in ids and isinstance(event, TERMINAL_EVENTS):
            ends[event.workflow_id] = event.at
    return ends


def history_at(api: Api, workflow_id: str) -> int:
    """The ``at`` of a workflow's terminal event, from ``GET /v1/workflows/{id}/history``."""
    history = httpx.get(f"{api.url}/v1/workflows/{workflow_id}/history", headers=api.headers)
    return int(next(e["at"] for e in history.json()["events"] if e["type"] in TERMINAL_TYPES))


def report_lag(api: Api, sampler: StatusSampler, watcher: VisibilityWatcher) -> None:
    """Print the status samples' and the probes' delays."""
    delays = sampler.delays
    print(
        f"status applyDelayMs ({len(delays)} samples at 100 ms): max {max(delays):.0f} ms, "
        f"p99 {percentile(delays, 99):.0f} ms, p50 {percentile(delays, 50):.0f} ms; "
        f"lag.records max {max(sampler.records):.0f}"
    )
    visible = [float(seen - history_at(api, wid)) for wid, (seen, _) in watcher.seen.items()]
    resolution = [float(gap) for _, gap in watcher.seen.values()]
    trips = watcher.round_trips
    print(
        f"visibility (terminal event's at -> API shows it, {len(visible)} probes, polled every "
        f"20 ms): max {max(visible):.0f} ms, p99 {percentile(visible, 99):.0f} ms, "
        f"p50 {percentile(visible, 50):.0f} ms"
    )
    print(
        f"  upper bounds, each within p50 {percentile(resolution, 50):.0f} ms, max "
        f"{max(resolution):.0f} ms (poll round trip p50 {percentile(trips, 50):.0f} ms, max "
        f"{max(trips):.0f} ms)"
    )


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--rate", type=float, default=2000.0, help="the fixed-rate runs' starts/s")
    parser.add_argument("--workflows", type=int, default=1000, help="part 2's workload")
    parser.add_argument("--tasks", type=int, default=5, help="part 2's worker tasks each")
    parser.add_argument("--samples", type=int, default=50, help="part 2's polled workflows")
    parser.add_argument("--part", choices=["all", "rate", "lag"], default="all")
    args = parser.parse_args()
    if args.part in ("all", "rate"):
        for processor in (False, True):
            for auth in (False, True):
                start_rate(args, processor=processor, auth=auth)
    if args.part in ("all", "lag"):
        lag_under_throughput(args)


if __name__ == "__main__":
    main()
