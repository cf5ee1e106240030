"""The chaos suite's cluster: processors and workers as child processes, and the monkey.

Every child runs ``python -m orchestrator.cli ...`` from the repository root in its own process
group, with JSON logs at INFO in its own file (appended across restarts). A processor instance
keeps its ``--instance-id`` and state directory across restarts, as a redeployed pod would.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from orchestrator.config import Settings

REPO = Path(__file__).resolve().parents[2]
STOP_GRACE_S = 15.0


class Member:
    """One restartable child process of the cluster."""

    def __init__(self, name: str, role: str, argv: list[str], env: dict[str, str], log: Path):
        self.name = name
        self.role = role
        self.argv = argv
        self.env = env
        self.log_path = log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def alive(self) -> bool:
        """Whether the process runs."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Spawn the process (it must not be running)."""
        assert not self.alive, f"{self.name} is already running"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "orchestrator.cli", *self.argv],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the process group and reap the process (SIGKILL after a grace)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
        try:
            self.process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(STOP_GRACE_S)

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the running process group (SIGSTOP / SIGCONT to freeze and thaw)."""
        assert self.process is not None, f"{self.name} never started"
        os.killpg(self.process.pid, sig)

    def log_records(self) -> Iterator[dict[str, Any]]:
        """The JSON lines of the member's log so far (lines cut short by SIGKILL skipped)."""
        if not self.log_path.exists():
            return
        for line in self.log_path.read_bytes().splitlines():
            if line.startswith(b"{"):
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue


class Cluster:
    """Three processor instances and two processes of each worker, on one deployment."""

    def __init__(
        self,
        settings: Settings,
        root: Path,
        *,
        processors: int = 3,
        workers: int = 2,
        concurrency: int = 16,
        waiting_concurrency: int = 1024,
    ) -> None:
        self.settings = settings
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.members: list[Member] = []
        for n in range(1, processors + 1):
            name = f"processor-{n}"
            env = self._env(state_dir=root / f"state-{name}")
            argv = ["processor", "--instance-id", name]
            self.members.append(Member(name, "processor", argv, env, root / f"{name}.log"))
        for kind, target, slots in (
            ("worker", "tests.chaos.workers:worker", concurrency),
            ("waiting", "tests.chaos.workers:waiting", waiting_concurrency),
        ):
            for n in range(1, workers + 1):
                name = f"{kind}-{n}"
                argv = ["worker", target, "--concurrency", str(slots)]
                env = self._env(state_dir=root / "unused")
                self.members.append(Member(name, "worker", argv, env, root / f"{name}.log"))

    def _env(self, state_dir: Path) -> dict[str, str]:
        return {
            **os.environ,
            "ORCH_BOOTSTRAP": self.settings.bootstrap,
            "ORCH_TOPIC_PREFIX": self.settings.topic_prefix,
            "ORCH_PARTITIONS": str(self.settings.partitions),
            "ORCH_STATE_DIR": str(state_dir),
            "ORCH_LOG_FORMAT": "json",
            "ORCH_LOG_LEVEL": "INFO",
        }

    @property
    def processors(self) -> list[Member]:
        """The processor instances."""
        return [m for m in self.members if m.role == "processor"]

    def state_dir(self, member: Member) -> Path:
        """A processor instance's state directory."""
        return Path(member.env["ORCH_STATE_DIR"])

    def start(self) -> None:
        """Start every member that is not running."""
        for member in self.members:
            if not member.alive:
                member.start()

    def close(self, sig: int = signal.SIGKILL) -> None:
        """Stop every member (workers first, then processors)."""
        for member in reversed(self.members):
            member.kill(sig)

    def owned(self, member: Member) -> set[int]:
        """The partitions a processor's log says its current session owns."""
        owned: set[int] = set()
        for record in member.log_records():
            match record.get("event"):
                case "partition assigned":
                    owned.add(record["partition"])
                case "partition released":
                    owned.discard(record["partition"])
                case "processor session started":
                    owned.clear()
        return owned

    def ownership(self) -> dict[int, list[str]]:
        """Which live processors claim each partition."""
        claims: dict[int, list[str]] = {p: [] for p in range(self.settings.partitions)}
        for member in self.processors:
            if member.alive:
                for partition in self.owned(member):
                    claims[partition].append(member.name)
        return claims

    def steady(self) -> bool:
        """Every member runs and every partition has exactly one owner."""
        alive = all(member.alive for member in self.members)
        return alive and all(len(names) == 1 for names in self.ownership().values())

    def log_summary(self) -> Counter[str]:
        """Warnings and errors the members logged, by member role, level and message."""
        seen: Counter[str] = Counter()
        for member in self.members:
            for record in member.log_records():
                if record.get("level") in ("warning", "error", "critical"):
                    seen[f"{member.role}: {record['level']}: {record.get('event')}"] += 1
        return seen


class Monkey:
    """Every ``interval`` seconds (uniform), kill -9 a random member, then restart it.

    ``pair_share`` of the processor kills take a second processor down at the same moment.
    With ``freeze_share``, that share of the processor victims is frozen instead (SIGSTOP for
    ``freeze_for`` seconds, past the session timeout, then SIGCONT): a zombie that wakes up
    after its partitions moved and must be fenced.
    """

    def __init__(
        self,
        cluster: Cluster,
        seed: int,
        *,
        interval: tuple[float, float] = (2.0, 5.0),
        restart_after: tuple[float, float] = (0.2, 1.5),
        processor_share: float = 0.5,
        pair_share: float = 0.2,
        freeze_share: float = 0.0,
        freeze_for: tuple[float, float] = (8.0, 12.0),
    ) -> None:
        self.cluster = cluster
        self.rng = random.Random(seed)
        self.interval = interval
        self.restart_after = restart_after
        self.processor_share = processor_share
        self.pair_share = pair_share
        self.freeze_share = freeze_share
        self.freeze_for = freeze_for
        self._thaws: list[threading.Timer] = []
        self.freezes = 0
        self.kills: Counter[str] = Counter()
        self._opening = self.rng.sample(["processor", "worker"], 2)
        self.timeline: list[tuple[float, str]] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-monkey", daemon=True)

    def start(self) -> None:
        """Begin killing."""
        self._thread.start()

    def stop(self) -> None:
        """Stop killing; wait for a restart in progress to finish. Idempotent."""
        self._stop.set()
        if self._thread.ident is None:
            return
        self._thread.join(60)
        assert not self._thread.is_alive(), "the chaos monkey did not stop"
        for thaw in self._thaws:
            thaw.cancel()
            _thaw(*thaw.args)  # SIGCONT twice is harmless

    @property
    def total(self) -> int:
        """How many kills so far."""
        return sum(self.kills.values())

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.rng.uniform(*self.interval)):
                victim = self._victim()
                if victim.role == "processor" and self.rng.random() < self.freeze_share:
                    self._freeze(victim)
                    continue
                victims = [victim, *self._partner(victim)]
                for member in victims:
                    member.kill()
                    self.kills[member.role] += 1
                    self.timeline.append((time.time(), member.name))
                time.sleep(self.rng.uniform(*self.restart_after))
                for member in victims:
                    member.start()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.errors.append(exc)

    def _freeze(self, victim: Member) -> None:
        assert victim.process is not None
        pid = victim.process.pid
        os.killpg(pid, signal.SIGSTOP)
        self.freezes += 1
        self.timeline.append((time.time(), f"freeze {victim.name}"))
        thaw = threading.Timer(self.rng.uniform(*self.freeze_for), _thaw, args=(pid,))
        thaw.daemon = True
        self._thaws.append(thaw)
        thaw.start()

    def _partner(self, victim: Member) -> list[Member]:
        """Sometimes a second processor dies with the first (a lost rack, a bad deploy)."""
        if victim.role != "processor" or self.rng.random() >= self.pair_share:
            return []
        others = [m for m in self.cluster.processors if m is not victim]
        return [self.rng.choice(others)] if others else []

    def _victim(self) -> Member:
        """A random member; the first two kills take one of each role, so a short run has both."""
        if self._opening:
            role = self._opening.pop()
        else:
            role = "processor" if self.rng.random() < self.processor_share else "worker"
        return self.rng.choice([m for m in self.cluster.members if m.role == role])


def _thaw(pid: int) -> None:
    """SIGCONT a frozen process group, unless it was killed meanwhile."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGCONT)
