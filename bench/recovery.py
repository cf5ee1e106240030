"""Failover time: from ``kill -9`` of a processor to its successor's first event per partition.

Two processor instances (own state directories) share the partitions, one worker process runs a
one-task chain, and a steady trickle of workflows lands on every partition. Each round kills one
instance with SIGKILL, then follows ``events`` until every partition the dead instance owned
shows an event its successor wrote (an event stamped after the kill: the processor stamps
``at`` with its wall clock, the same clock as this script's). Ownership comes from the
processors' own JSON logs (``partition assigned`` / ``partition released``). The killed
instance is restarted before the next round, so rounds alternate victims.

Prints, per round, the recovery seconds of each moved partition and the longest pause of the
survivor's partitions (the rebalance stops them too), then the maximum over all rounds.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from common import bench_settings

from orchestrator.client import Client
from orchestrator.config import Settings
from orchestrator.dsl import parse_definition
from orchestrator.log.partitioning import partition_for
from orchestrator.log.reader import read_events
from orchestrator.stack import LocalStack

TARGET_S = 10.0
ONE_TASK = {
    "name": "bench_trickle",
    "tasks": [
        {
            "name": "bench_step",
            "taskReferenceName": "s0",
            "inputParameters": {"n": "${workflow.input.n}"},
        }
    ],
}


class Instance:
    """One processor child process, its state directory and its log."""

    def __init__(self, stack: LocalStack, name: str, root: Path) -> None:
        self.stack = stack
        self.name = name
        self.state_dir = root / f"state-{name}"
        self.log_path = root / f"processor-{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Spawn ``orchestrator processor`` with JSON logs at INFO (ownership is read from them)."""
        self.process = self.stack.spawn(
            f"processor-{self.name}",
            "--state-dir",
            str(self.state_dir),
            "--log-format",
            "json",
            "--log-level",
            "INFO",
            "processor",
            "--instance-id",
            self.name,
            log_path=self.log_path,
        )

    def kill(self) -> float:
        """SIGKILL the process group; return the wall-clock time of the kill."""
        assert self.process is not None
        killed_at = time.time()
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        return killed_at

    def log_records(self) -> Iterator[dict[str, Any]]:
        """The JSON lines of this instance's log, so far."""
        if not self.log_path.exists():
            return
        for line in self.log_path.read_bytes().splitlines():
            if not line.startswith(b"{"):
                continue
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a line cut short by SIGKILL

    def owned(self) -> set[int]:
        """The partitions this instance's log says it owns now (its last session's view)."""
        owned: set[int] = set()
        for record in self.log_records():
            match record.get("event"):
                case "partition assigned":
                    owned.add(record["partition"])
                case "partition released":
                    owned.discard(record["partition"])
                case "processor session started":
                    owned.clear()  # a new process or session starts with nothing
        return owned


class Tail:
    """Follows every partition of ``events``: (event ``at`` ms, receive time) per partition."""

    def __init__(self, settings: Settings, seconds: float) -> None:
        self.settings = settings
        self.seen: dict[int, list[tuple[int, float]]] = {p: [] for p in range(settings.partitions)}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(seconds,), daemon=True)

    def __enter__(self) -> Tail:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self, seconds: float) -> None:
        events = read_events(self.settings, follow=True, timeout=seconds)
        try:
            for event in events:
                partition = partition_for(event.workflow_id, self.settings.partitions)
                with self._lock:
                    self.seen[partition].append((event.at, time.time()))
                if self._stop.is_set():
                    break
        finally:
            events.close()

    def first_after(self, partition: int, since_ms: int) -> tuple[int, float] | None:
        """The first event of ``partition`` stamped at or after ``since_ms``, if any yet."""
        with self._lock:
            return next((seen for seen in self.seen[partition] if seen[0] >= since_ms), None)

    def longest_pause(self, partition: int, since_ms: int, until_ms: int) -> float:
        """The longest gap (s) between consecutive events of ``partition`` in the window."""
        with self._lock:
            stamps = [at for at, _ in self.seen[partition] if since_ms <= at <= until_ms]
        points = [since_ms, *sorted(stamps)]
        return max(b - a for a, b in itertools.pairwise(points)) / 1000 if stamps else float("nan")

    def recent(self, partition: int, within_s: float) -> bool:
        """Whether ``partition`` had an event received in the last ``within_s`` seconds."""
        with self._lock:
            seen = self.seen[partition]
            return bool(seen) and time.time() - seen[-1][1] < within_s


def ids_by_partition(partitions: int) -> Iterator[str]:
    """Workflow ids that visit the partitions round robin, so every partition gets a trickle."""
    counter = itertools.count()
    for partition in itertools.cycle(range(partitions)):
        while True:
            candidate = f"trickle-{next(counter)}"
            if partition_for(candidate, partitions) == partition:
                yield candidate
                break


def trickle(client: Client, rate: float, stop: threading.Event) -> None:
    """Start one-task workflows at ``rate`` per second until ``stop``."""
    ids = ids_by_partition(client.settings.partitions)
    began = time.monotonic()
    for n in itertools.count():
        if stop.wait(max(0.0, began + n / rate - time.monotonic())):
            return
        client.start("bench_trickle", input={"n": n}, workflow_id=next(ids))


def wait_for(condition: object, timeout: float, what: str) -> None:
    """Poll ``condition`` (a callable) until true; raise with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up: {what} within {timeout:g} s")
        time.sleep(0.2)


def steady(instances: list[Instance], tail: Tail, partitions: int) -> bool:
    """Every instance owns a share, the shares cover every partition, and events flow on each."""
    shares = [instance.owned() for instance in instances]
    covered = set().union(*shares) == set(range(partitions))
    disjoint = sum(len(share) for share in shares) == partitions
    return (
        all(shares) and covered and disjoint and all(tail.recent(p, 2.0) for p in range(partitions))
    )


def one_round(victim: Instance, survivor: Instance, tail: Tail, timeout: float) -> list[float]:
    """Kill ``victim``; return each moved partition's recovery time; print the round's figures."""
    moved = sorted(victim.owned())
    kept = sorted(survivor.owned())
    killed_at = victim.kill()
    since_ms = int(killed_at * 1000)
    deadline = time.monotonic() + timeout
    recovery: dict[int, float] = {}
    while len(recovery) < len(moved) and time.monotonic() < deadline:
        for partition in moved:
            first = tail.first_after(partition, since_ms)
            if partition not in recovery and first is not None:
                recovery[partition] = first[0] / 1000 - killed_at
        time.sleep(0.05)
    missing = [p for p in moved if p not in recovery]
    if missing:
        raise SystemExit(f"partitions {missing} saw no event within {timeout:g} s of the kill")
    time.sleep(2.0)  # let the survivor's own partitions show their pause end
    until_ms = int(time.time() * 1000)
    pauses = {p: tail.longest_pause(p, since_ms, until_ms) for p in kept}
    print(
        f"  killed {victim.name} (owned {moved}); {survivor.name} took over: "
        + ", ".join(f"p{p} {recovery[p]:.2f} s" for p in moved)
    )
    print(
        f"  {survivor.name}'s own partitions {kept}, longest pause: "
        + ", ".join(f"p{p} {pauses[p]:.2f} s" for p in kept)
    )
    print(f"  {breakdown(survivor, killed_at, moved)}")
    return list(recovery.values())


def breakdown(survivor: Instance, killed_at: float, moved: list[int]) -> str:
    """Where the time went, from the survivor's log: rebalance start, assignment, catch-up."""
    revoked_at = assigned_at = None
    catch_up = 0.0
    for record in survivor.log_records():
        at = datetime.fromisoformat(record["timestamp"]).timestamp()
        if at < killed_at:
            continue
        if record.get("event") == "partition released" and revoked_at is None:
            revoked_at = at
        elif record.get("event") == "partition assigned" and record["partition"] in moved:
            assigned_at = at
            catch_up += record.get("seconds", 0.0)
    if revoked_at is None or assigned_at is None:
        return "breakdown: no rebalance in the survivor's log"
    return (
        f"breakdown: kill -> rebalance begins {revoked_at - killed_at:.2f} s, "
        f"-> moved partitions assigned and caught up {assigned_at - revoked_at:.2f} s "
        f"(catch-up itself {catch_up:.2f} s)"
    )


def main() -> None:
    """Run the rounds and print the recovery figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=30.0, help="workflow starts/s")
    parser.add_argument("--timeout", type=float, default=60.0, help="per round, seconds")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        bench_settings(partitions=args.partitions) as settings,
        LocalStack(settings, embedded_broker=False) as stack,
    ):
        root = Path(tmp)
        print(
            f"recovery: 2 processors, {settings.partitions} partitions, session timeout "
            f"{settings.session_timeout_ms / 1000:g} s, {args.rate:g} workflow starts/s"
        )
        stack.spawn("worker", "worker", "workers.bench", log_path=root / "worker.log")
        client = Client(settings)
        client.register([parse_definition(ONE_TASK)])
        instances = [Instance(stack, name, root) for name in ("a", "b")]
        for instance in instances:
            instance.start()
        stop = threading.Event()
        feeder = threading.Thread(target=trickle, args=(client, args.rate, stop), daemon=True)
        feeder.start()
        worst: list[float] = []
        try:
            with Tail(settings, seconds=args.rounds * (args.timeout + 60) + 120) as tail:
                for number in range(args.rounds):
                    wait_for(
                        lambda: steady(instances, tail, settings.partitions),
                        90,
                        "both processors owning partitions with events flowing",
                    )
                    victim, survivor = instances[number % 2], instances[1 - number % 2]
                    print(f"round {number + 1}:")
                    worst.extend(one_round(victim, survivor, tail, args.timeout))
                    victim.start()
        finally:
            stop.set()
            feeder.join(10)
            client.close()
        print(
            f"recovery after kill -9: max {max(worst):.2f} s, "
            f"mean {sum(worst) / len(worst):.2f} s over {len(worst)} partition moves "
            f"(target < {TARGET_S:g} s: {'met' if max(worst) < TARGET_S else 'MISSED'})"
        )


if __name__ == "__main__":
    main()
