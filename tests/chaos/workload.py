"""The chaos workload: definitions, and workflows whose input decides how each one must end.

Every case carries its expected terminal status and output, computed here from the input the
moment it is generated; the workers (``tests.chaos.workers``) are deterministic in the input and
the attempt number, so kills can delay a workflow but never change where it ends.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from orchestrator.dsl import parse_definition
from orchestrator.dsl.model import WorkflowDef

Json = Any

#: Attempt 1 of chaos_slow answers this long after it starts: far past its response timeout and
#: past any outage of a partition's processor, so its late answer can only be stale.
SLOW_S = 45
#: Timeout-driven retries need a large budget: every worker kill stalls its partitions for a
#: session timeout plus a rebalance, and each stalled attempt times out and is retried.
TIMEOUT_RETRIES = 60
RESPONSE_TIMEOUT_S = 4
TASK_TIMEOUT_S = 4
WORKFLOW_TIMEOUT_S = 6

FIXED = {"retryCount": 3, "retryLogic": "FIXED", "retryDelaySeconds": 1}
LINEAR = {"retryCount": 2, "retryLogic": "LINEAR_BACKOFF", "retryDelaySeconds": 1}
LINEAR_SCALE = 2
#: Registered (not inline): chaos_flaky's tasks without a taskDefinition of their own use it.
REGISTERED_FLAKY = {
    "name": "chaos_flaky",
    "retryCount": 3,
    "retryLogic": "EXPONENTIAL_BACKOFF",
    "retryDelaySeconds": 1,
    "responseTimeoutSeconds": 0,
    "timeoutSeconds": 0,
}
RESPONSE_TIMEOUT = {
    "retryCount": TIMEOUT_RETRIES,
    "retryLogic": "FIXED",
    "retryDelaySeconds": 0,
    "responseTimeoutSeconds": RESPONSE_TIMEOUT_S,
}
TOTAL_TIMEOUT_RETRY = {
    "retryCount": TIMEOUT_RETRIES,
    "retryLogic": "FIXED",
    "retryDelaySeconds": 1,
    "timeoutSeconds": TASK_TIMEOUT_S,
    "timeoutPolicy": "RETRY",
}
TOTAL_TIMEOUT_WF = {
    "retryCount": 0,
    "retryDelaySeconds": 0,
    "timeoutSeconds": TASK_TIMEOUT_S,
    "timeoutPolicy": "TIME_OUT_WF",
}
GARBAGE = {"retryCount": 2, "retryLogic": "FIXED", "retryDelaySeconds": 0}


def _task(
    name: str, ref: str, inputs: dict[str, Json], policy: dict[str, Json] | None = None
) -> dict[str, Json]:
    task: dict[str, Json] = {"name": name, "taskReferenceName": ref, "inputParameters": inputs}
    if policy is not None:
        linear = {"backoffScaleFactor": LINEAR_SCALE} if policy is LINEAR else {}
        task["taskDefinition"] = {"name": name, **policy, **linear}
    return task


def _step(ref: str, v: str, add: str) -> dict[str, Json]:
    return _task("chaos_step", ref, {"v": v, "add": add})


DEFINITIONS: list[dict[str, Json]] = [
    {
        "name": "chaos_chain",
        "tasks": [
            _step("s1", "${workflow.input.v}", "${workflow.input.a}"),
            _step("s2", "${s1.output.v}", "${workflow.input.b}"),
            _step("s3", "${s2.output.v}", "${workflow.input.c}"),
        ],
        "outputParameters": {"v": "${s3.output.v}"},
    },
    {
        "name": "chaos_fork",
        "tasks": [
            {
                "name": "fork",
                "taskReferenceName": "fork",
                "type": "FORK_JOIN",
                "forkTasks": [
                    [
                        _step("fa1", "${workflow.input.v}", "${workflow.input.x}"),
                        _step("fa2", "${fa1.output.v}", "${workflow.input.y}"),
                    ],
                    [
                        _task(
                            "chaos_flaky",
                            "fb",
                            {"v": "${workflow.input.v}", "fail_times": "${workflow.input.k}"},
                            FIXED,
                        )
                    ],
                    [
                        _task(
                            "chaos_hang",
                            "fc",
                            {"v": "${workflow.input.v}", "hang_first": "${workflow.input.hang}"},
                            RESPONSE_TIMEOUT,
                        )
                    ],
                ],
            },
            {"name": "join", "taskReferenceName": "join", "type": "JOIN"},
            _step("fin", "${fa2.output.v}", "${fb.output.v}"),
        ],
        "outputParameters": {
            "left": "${fa2.output.v}",
            "mid": "${fb.output.attempt}",
            "right": "${fc.output.v}",
            "total": "${fin.output.v}",
        },
    },
    {
        "name": "chaos_retry",
        "tasks": [
            _task(
                "chaos_flaky",
                "r1",
                {
                    "v": "${workflow.input.v}",
                    "fail_times": "${workflow.input.f1}",
                    "terminal": "${workflow.input.terminal}",
                },
                FIXED,
            ),
            _task(
                "chaos_flaky",
                "r2",
                {"v": "${r1.output.v}", "fail_times": "${workflow.input.f2}"},
                LINEAR,
            ),
            _task(
                "chaos_flaky", "r3", {"v": "${r2.output.v}", "fail_times": "${workflow.input.f3}"}
            ),
        ],
        "outputParameters": {
            "v": "${r3.output.v}",
            "attempts": ["${r1.output.attempt}", "${r2.output.attempt}", "${r3.output.attempt}"],
        },
    },
    {
        "name": "chaos_timeout",
        "tasks": [
            _task(
                "chaos_slow",
                "t1",
                {"v": "${workflow.input.v}", "sleep": "${workflow.input.sleep}"},
                RESPONSE_TIMEOUT,
            ),
            _task(
                "chaos_hang",
                "t2",
                {"v": "${t1.output.v}", "hang_first": True},
                RESPONSE_TIMEOUT,
            ),
        ],
        "outputParameters": {"late": "${t1.output.late}", "v": "${t2.output.v}"},
    },
    {
        "name": "chaos_timeout_total",
        "tasks": [
            _task(
                "chaos_hang",
                "h1",
                {"v": "${workflow.input.v}", "hang_first": True},
                TOTAL_TIMEOUT_RETRY,
            )
        ],
        "outputParameters": {"v": "${h1.output.v}"},
    },
    {
        "name": "chaos_garbage",
        "tasks": [
            _task("chaos_garbage", "g1", {"v": "${workflow.input.v}"}, GARBAGE),
            _step("g2", "${g1.output.v}", "${workflow.input.a}"),
        ],
        "outputParameters": {"v": "${g2.output.v}", "garbage": "${g1.output.garbage}"},
    },
    {
        "name": "chaos_task_timed_out",
        "tasks": [
            _task(
                "chaos_hang",
                "h1",
                {"v": "${workflow.input.v}", "always": True},
                TOTAL_TIMEOUT_WF,
            )
        ],
    },
    {
        "name": "chaos_workflow_timed_out",
        "timeoutSeconds": WORKFLOW_TIMEOUT_S,
        "tasks": [
            _step("s1", "${workflow.input.v}", "${workflow.input.a}"),
            _task("chaos_hang", "h1", {"v": "${s1.output.v}", "always": True}),
        ],
    },
]


def definitions() -> list[WorkflowDef]:
    """Every workflow definition the suite registers."""
    return [parse_definition(definition) for definition in DEFINITIONS]


# Cases -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One workflow to run and how it must end.

    ``failed_ref``: the task a FAILED or TIMED_OUT run names. ``attempts``: per task reference,
    how many attempts it must end with (an exact count), or ``(">=", n)`` where kills may add
    timeouts. ``timed_out_refs``: tasks whose first attempt must time out.
    """

    workflow_id: str
    name: str
    input: dict[str, Json]
    status: str
    output: Json = None
    failed_ref: str | None = None
    attempts: dict[str, Json] = field(default_factory=dict)
    timed_out_refs: tuple[str, ...] = ()


MIX = (
    ("chaos_chain", 25),
    ("chaos_fork", 20),
    ("chaos_retry", 20),
    ("chaos_timeout", 11),
    ("chaos_timeout_total", 8),
    ("chaos_garbage", 9),
    ("chaos_task_timed_out", 4),
    ("chaos_workflow_timed_out", 3),
)


def cases(count: int, seed: int) -> list[Case]:
    """``count`` cases drawn from :data:`MIX` with ``seed``; every kind appears at least once."""
    rng = random.Random(seed)
    names = [name for name, _ in MIX]
    kinds = names + rng.choices(names, weights=[w for _, w in MIX], k=max(0, count - len(names)))
    rng.shuffle(kinds)
    return [_BUILDERS[kind](f"chaos-{n:05d}-{kind[6:]}", rng) for n, kind in enumerate(kinds)]


def _chain(workflow_id: str, rng: random.Random) -> Case:
    v, a, b, c = (rng.randint(0, 1000) for _ in range(4))
    data = {"v": v, "a": a, "b": b, "c": c}
    return Case(workflow_id, "chaos_chain", data, "COMPLETED", {"v": v + a + b + c})


def _fork(workflow_id: str, rng: random.Random) -> Case:
    v, x, y = (rng.randint(0, 1000) for _ in range(3))
    k, hang = rng.randint(0, FIXED["retryCount"]), rng.random() < 0.5
    data = {"v": v, "x": x, "y": y, "k": k, "hang": hang}
    output = {"left": v + x + y, "mid": k + 1, "right": v + 1, "total": v + x + y + v + 1}
    attempts: dict[str, Json] = {"fa1": 1, "fa2": 1, "fb": k + 1, "fin": 1}
    attempts["fc"] = (">=", 2) if hang else (">=", 1)
    timed_out = ("fc",) if hang else ()
    return Case(workflow_id, "chaos_fork", data, "COMPLETED", output, None, attempts, timed_out)


def _retry(workflow_id: str, rng: random.Random) -> Case:
    v = rng.randint(0, 1000)
    limits = {"r1": FIXED["retryCount"], "r2": LINEAR["retryCount"], "r3": 3}
    fails = {ref: rng.randint(0, limit) for ref, limit in limits.items()}
    terminal = rng.random() < 0.08
    exhausted = None if terminal or rng.random() >= 0.15 else rng.choice(list(limits))
    if exhausted is not None:
        fails[exhausted] = limits[exhausted] + 1 + rng.randint(0, 2)
    data = {"v": v, "f1": fails["r1"], "f2": fails["r2"], "f3": fails["r3"], "terminal": terminal}
    if terminal:
        return Case(workflow_id, "chaos_retry", data, "FAILED", None, "r1", {"r1": 1})
    attempts: dict[str, Json] = {}
    for ref, limit in limits.items():
        if fails[ref] > limit:
            attempts[ref] = limit + 1
            return Case(workflow_id, "chaos_retry", data, "FAILED", None, ref, attempts)
        attempts[ref] = fails[ref] + 1
    output = {"v": v + 3, "attempts": [fails[ref] + 1 for ref in limits]}
    return Case(workflow_id, "chaos_retry", data, "COMPLETED", output, None, attempts)


def _timeout(workflow_id: str, rng: random.Random) -> Case:
    v = rng.randint(0, 1000)
    data = {"v": v, "sleep": SLOW_S}
    attempts = {"t1": (">=", 2), "t2": (">=", 2)}
    output = {"late": False, "v": v + 2}
    return Case(
        workflow_id, "chaos_timeout", data, "COMPLETED", output, None, attempts, ("t1", "t2")
    )


def _timeout_total(workflow_id: str, rng: random.Random) -> Case:
    v = rng.randint(0, 1000)
    name, output = "chaos_timeout_total", {"v": v + 1}
    return Case(workflow_id, name, {"v": v}, "COMPLETED", output, None, {"h1": (">=", 2)}, ("h1",))


def _garbage(workflow_id: str, rng: random.Random) -> Case:
    v, a = rng.randint(0, 1000), rng.randint(0, 1000)
    output = {"v": v + 1 + a, "garbage": False}
    attempts = {"g1": 2, "g2": 1}
    return Case(workflow_id, "chaos_garbage", {"v": v, "a": a}, "COMPLETED", output, None, attempts)


def _task_timed_out(workflow_id: str, rng: random.Random) -> Case:
    data = {"v": rng.randint(0, 1000)}
    name = "chaos_task_timed_out"
    return Case(workflow_id, name, data, "TIMED_OUT", None, "h1", {"h1": 1}, ("h1",))


def _workflow_timed_out(workflow_id: str, rng: random.Random) -> Case:
    data = {"v": rng.randint(0, 1000), "a": rng.randint(0, 1000)}
    name = "chaos_workflow_timed_out"
    # No attempt counts: the deadline may pass before s1 even completes, when kills slow it.
    return Case(workflow_id, name, data, "TIMED_OUT")


_BUILDERS = {
    "chaos_chain": _chain,
    "chaos_fork": _fork,
    "chaos_retry": _retry,
    "chaos_timeout": _timeout,
    "chaos_timeout_total": _timeout_total,
    "chaos_garbage": _garbage,
    "chaos_task_timed_out": _task_timed_out,
    "chaos_workflow_timed_out": _workflow_timed_out,
}


#: The retry policy each task runs under, by (workflow name, reference name), as this suite
#: configured it (inline, or registered for chaos_flaky): the checks derive delays from it.
REF_POLICIES: dict[tuple[str, str], dict[str, Json]] = {
    ("chaos_fork", "fb"): FIXED,
    ("chaos_fork", "fc"): RESPONSE_TIMEOUT,
    ("chaos_retry", "r1"): FIXED,
    ("chaos_retry", "r2"): {**LINEAR, "backoffScaleFactor": LINEAR_SCALE},
    ("chaos_retry", "r3"): REGISTERED_FLAKY,
    ("chaos_timeout", "t1"): RESPONSE_TIMEOUT,
    ("chaos_timeout", "t2"): RESPONSE_TIMEOUT,
    ("chaos_timeout_total", "h1"): TOTAL_TIMEOUT_RETRY,
    ("chaos_garbage", "g1"): GARBAGE,
    ("chaos_task_timed_out", "h1"): TOTAL_TIMEOUT_WF,
}


def retry_delay_ms(policy: dict[str, Json], failed_attempt: int) -> int:
    """Conductor's backoff: the delay after attempt ``failed_attempt`` (1-based) failed."""
    base = int(policy.get("retryDelaySeconds", 0)) * 1000
    match policy.get("retryLogic", "FIXED"):
        case "LINEAR_BACKOFF":
            return base * int(policy.get("backoffScaleFactor", 1)) * failed_attempt
        case "EXPONENTIAL_BACKOFF":
            return base * 2 ** (failed_attempt - 1)
        case _:
            return base
