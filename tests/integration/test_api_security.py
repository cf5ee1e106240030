"""The HTTP API's guards: bearer tokens, role and namespace boundaries, body limits, validation."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
import pytest
from confluent_kafka import TopicPartition

from orchestrator.api.auth import AuthConfig, Role, issue_token
from orchestrator.api.auth_keys import generate_rsa_jwks, generate_rsa_key
from orchestrator.config import Settings
from orchestrator.log.kafka import make_consumer
from orchestrator.log.topics import Topics
from orchestrator.processor.loop import Processor
from tests.helpers import assert_eventually
from tests.integration.conftest import ApiServer

pytestmark = pytest.mark.integration
Json = Any
SECRET = "integration-test-secret-of-at-least-32-bytes"  # noqa: S105 - a test-only key
MIB = 1024 * 1024


def token(
    roles: list[str],
    namespaces: tuple[str, ...] = ("*",),
    *,
    secret: str = SECRET,
    ttl_s: int = 3600,
    subject: str = "tester",
) -> str:
    """An HS256 token signed with ``secret``."""
    return issue_token(secret, subject=subject, roles=roles, namespaces=namespaces, ttl_s=ttl_s)


def caller(url: str, bearer: str | None) -> httpx.Client:
    """An HTTP client of the API sending ``bearer`` (no Authorization header when None)."""
    headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
    return httpx.Client(base_url=url, headers=headers, timeout=20)


def human_flow(name: str, namespace: str = "default") -> dict[str, Json]:
    """A definition whose run waits at a HUMAN task ``review`` assigned to alice."""
    return {
        "name": name,
        "namespace": namespace,
        "tasks": [
            {
                "name": "review",
                "taskReferenceName": "review",
                "type": "HUMAN",
                "inputParameters": {"assignee": "alice"},
            }
        ],
    }


def waiting_ids(api: httpx.Client) -> set[str]:
    """Ids of the workflows whose HUMAN task ``api``'s caller sees waiting."""
    response = api.get("/v1/human-tasks")
    assert response.status_code == 200, response.text
    return {row["workflowId"] for row in response.json()["results"]}


def record_keys(settings: Settings, topic: str, partitions: int) -> list[str]:
    """The key of every record on ``topic``, read from the start to the end of each partition."""
    consumer = make_consumer(settings, None, **{"enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    keys: list[str] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + 20
    try:
        while len(at_end) < partitions and time.monotonic() < deadline:
            for message in consumer.consume(500, 0.2):
                if message.error() is not None:
                    at_end.add(message.partition())
                else:
                    keys.append(message.key().decode())
    finally:
        consumer.close()
    assert len(at_end) == partitions, f"{topic} not read to its end within 20 s"
    return keys


@pytest.fixture
def secured(api_factory: Callable[..., ApiServer]) -> str:
    """The base URL of an API that verifies HS256 tokens signed with SECRET."""
    return api_factory(auth=AuthConfig(hs256_secret=SECRET)).url


@pytest.fixture
def admin(secured: str) -> Iterator[httpx.Client]:
    """A client of ``secured`` with an admin token for every namespace."""
    with caller(secured, token(["admin"])) as api:
        yield api


# Roles -----------------------------------------------------------------------------------------

Call = Callable[[httpx.Client, str], httpx.Response]
# What each operation needs at least, and how a caller with role ``who`` calls it. Workflows
# named ``<who>-<operation>`` are started for the callers in advance, one per role and operation,
# so one role's terminate does not leave the next role a terminated workflow.
OPERATIONS: dict[str, tuple[Role, Call]] = {
    "list definitions": (Role.VIEWER, lambda api, who: api.get("/v1/metadata/workflows")),
    "register definition": (
        Role.ADMIN,
        lambda api, who: api.post("/v1/metadata/workflows", json=human_flow(f"new_{who}")),
    ),
    "delete definition": (
        Role.ADMIN,
        lambda api, who: api.delete(f"/v1/metadata/workflows/doomed_{who}/1"),
    ),
    "start": (Role.OPERATOR, lambda api, who: api.post("/v1/workflows", json={"name": "guarded"})),
    "get": (Role.VIEWER, lambda api, who: api.get("/v1/workflows/shared-read")),
    "search": (Role.VIEWER, lambda api, who: api.get("/v1/workflows", params={"name": "guarded"})),
    "history": (Role.VIEWER, lambda api, who: api.get("/v1/workflows/shared-read/history")),
    "terminate": (
        Role.OPERATOR,
        lambda api, who: api.post(f"/v1/workflows/{who}-terminate/terminate", json={}),
    ),
    "pause": (
        Role.OPERATOR,
        lambda api, who: api.post(f"/v1/workflows/{who}-pause/pause", json={"reason": "test"}),
    ),
    "signal": (
        Role.OPERATOR,
        lambda api, who: api.post(f"/v1/workflows/{who}-signal/signal", json={"taskRef": "review"}),
    ),
    "human inbox": (Role.VIEWER, lambda api, who: api.get("/v1/human-tasks")),
    "human complete": (
        Role.OPERATOR,
        lambda api, who: api.post(
            f"/v1/human-tasks/{who}-complete/review/complete", json={"output": {"ok": True}}
        ),
    ),
    "metrics summary": (Role.VIEWER, lambda api, who: api.get("/v1/metrics/summary")),
}
RUN_PER_ROLE = ("terminate", "pause", "signal", "complete")


def test_every_role_boundary(
    secured: str, admin: httpx.Client, processor_thread: Processor
) -> None:
    """Viewers read, operators also run and steer workflows, admins also manage definitions."""
    assert admin.post("/v1/metadata/workflows", json=human_flow("guarded")).status_code == 201
    ids = {"shared-read"} | {f"{role.claim}-{op}" for role in Role for op in RUN_PER_ROLE}
    for role in Role:
        doomed = human_flow(f"doomed_{role.claim}")
        assert admin.post("/v1/metadata/workflows", json=doomed).status_code == 201
    for workflow_id in sorted(ids):
        started = admin.post("/v1/workflows", json={"name": "guarded", "workflowId": workflow_id})
        assert started.status_code == 201, started.text
    assert_eventually(lambda: waiting_ids(admin) >= ids, timeout=30)

    outcomes, expected = {}, {}
    for role in Role:
        with caller(secured, token([role.claim])) as api:
            for operation, (needed, call) in OPERATIONS.items():
                response = call(api, role.claim)
                assert response.status_code < 300 or response.status_code == 403, response.text
                outcomes[role.claim, operation] = "ok" if response.status_code < 300 else 403
                expected[role.claim, operation] = "ok" if role >= needed else 403
    assert outcomes == expected


def test_a_token_without_a_known_role_is_forbidden(secured: str) -> None:
    """A verified token that holds no role the API knows gets 403 on every route."""
    with caller(secured, token(["superuser", "root"])) as api:
        listed = api.get("/v1/metadata/workflows")
    assert listed.status_code == 403
    assert "viewer" in listed.json()["detail"]


# Namespaces ------------------------------------------------------------------------------------


def test_namespaces_hide_each_others_definitions_runs_and_tasks(
    secured: str, processor_thread: Processor
) -> None:
    """Team A cannot see, start, steer or take over team B's things; a "*" token sees both."""
    team_a = caller(secured, token(["admin"], ("team-a",)))
    team_b = caller(secured, token(["admin"], ("team-b",)))
    everyone = caller(secured, token(["admin"], ("*",)))
    with team_a, team_b, everyone:
        assert team_a.post("/v1/metadata/workflows", json=human_flow("a_flow", "team-a")).is_success
        assert team_b.post("/v1/metadata/workflows", json=human_flow("b_flow", "team-b")).is_success
        for client, name, workflow_id in ((team_a, "a_flow", "a-1"), (team_b, "b_flow", "b-1")):
            started = client.post("/v1/workflows", json={"name": name, "workflowId": workflow_id})
            assert started.status_code == 201, started.text
        assert_eventually(lambda: waiting_ids(everyone) == {"a-1", "b-1"}, timeout=30)

        names = {d["name"] for d in team_a.get("/v1/metadata/workflows").json()}
        assert names == {"a_flow"}
        assert team_a.get("/v1/metadata/workflows/b_flow").status_code == 404
        assert team_a.get("/v1/metadata/workflows/b_flow/1").status_code == 404
        assert team_a.delete("/v1/metadata/workflows/b_flow/1").status_code == 404
        assert team_a.post("/v1/workflows", json={"name": "b_flow"}).status_code == 404

        assert team_a.get("/v1/workflows/b-1").status_code == 404
        assert team_a.get("/v1/workflows/b-1/history").status_code == 404
        assert team_a.post("/v1/workflows/b-1/terminate", json={}).status_code == 404
        assert (
            team_a.post("/v1/workflows/b-1/signal", json={"taskRef": "review"}).status_code == 404
        )
        found = team_a.get("/v1/workflows").json()
        assert (found["total"], [r["workflowId"] for r in found["results"]]) == (1, ["a-1"])
        assert team_a.get("/v1/workflows", params={"name": "b_flow"}).json()["total"] == 0
        assert team_a.get("/v1/workflows", params={"q": "b-1"}).json()["total"] == 0
        assert waiting_ids(team_a) == {"a-1"}
        completed = team_a.post("/v1/human-tasks/b-1/review/complete", json={})
        assert completed.status_code == 404
        summary = team_a.get("/v1/metrics/summary").json()
        assert {w["name"] for w in summary["workflows"]} == {"a_flow"}

        into_b = team_a.post("/v1/metadata/workflows", json=human_flow("a_second", "team-b"))
        assert into_b.status_code == 403, into_b.text
        assert "team-b" in into_b.json()["detail"]
        takeover = team_a.post("/v1/metadata/workflows", json=human_flow("b_flow", "team-a"))
        assert takeover.status_code == 409, takeover.text

        assert {d["name"] for d in everyone.get("/v1/metadata/workflows").json()} == {
            "a_flow",
            "b_flow",
        }
        assert everyone.get("/v1/workflows").json()["total"] == 2
        assert everyone.get("/v1/workflows/b-1").json()["namespace"] == "team-b"
        assert team_b.get("/v1/workflows/b-1").status_code == 200
        assert team_b.get("/v1/workflows/a-1").status_code == 404


# Tokens ----------------------------------------------------------------------------------------


def tampered(original: str) -> str:
    """``original`` with its payload rewritten to claim admin everywhere, signature kept."""
    header, payload, signature = original.split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(roles=["admin"], namespaces=["*"])
    forged = base64.urlsafe_b64encode(orjson.dumps(claims)).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


@pytest.mark.parametrize(
    ("bearer", "reason"),
    [
        (token(["viewer"], ttl_s=-3600), "expired"),
        (tampered(token(["viewer"], ("team-a",))), "signature"),
        (token(["admin"], secret=SECRET[::-1]), "signature"),
        ("not-a-jwt", "malformed"),
        (jwt.encode({"sub": "x", "roles": ["admin"]}, SECRET, algorithm="HS256"), "exp"),
    ],
    ids=["expired", "tampered", "wrong-secret", "garbage", "no-exp"],
)
def test_a_bad_token_is_unauthorized(secured: str, bearer: str, reason: str) -> None:
    """A token that is expired, altered, signed with another secret or malformed gets 401."""
    with caller(secured, bearer) as api:
        response = api.get("/v1/workflows")
    assert response.status_code == 401, response.text
    assert reason in response.json()["detail"]
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_missing_token_is_challenged(secured: str) -> None:
    """No Authorization header: 401 with a Bearer challenge; health and status stay open."""
    with caller(secured, None) as api:
        response = api.post("/v1/workflows", json={"name": "guarded"})
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert "missing" in response.json()["detail"]
        assert api.get("/healthz").status_code == 200
        assert api.get("/v1/status").json()["authEnabled"] is True


def test_status_says_auth_is_off_in_development(api_server: str) -> None:
    """With authentication disabled the status endpoint says so, and no token is needed."""
    with caller(api_server, None) as api:
        assert api.get("/v1/status").json()["authEnabled"] is False
        assert api.get("/v1/metadata/workflows").status_code == 200


def test_rs256_tokens_verify_against_a_jwks_file(
    api_factory: Callable[..., ApiServer], tmp_path: Path
) -> None:
    """RS256 tokens signed by the JWKS's key pass; another key, HS256 and "none" do not."""
    private_key, jwks = generate_rsa_jwks(tmp_path / "keys", kid="test-rsa")
    url = api_factory(auth=AuthConfig(jwks_file=jwks)).url

    def rs256(key: str) -> str:
        return issue_token(
            key,
            subject="rs",
            roles=[Role.VIEWER],
            namespaces=["*"],
            algorithm="RS256",
            kid="test-rsa",
        )

    unsigned = jwt.encode(
        {"sub": "x", "roles": ["admin"], "exp": int(time.time()) + 60}, None, algorithm="none"
    )
    outcomes = {}
    for label, bearer in {
        "rs256": rs256(private_key),
        "other key": rs256(generate_rsa_key()),
        "hs256": token(["viewer"]),
        "none": unsigned,
    }.items():
        with caller(url, bearer) as api:
            outcomes[label] = api.get("/v1/metadata/workflows").status_code
    assert outcomes == {"rs256": 200, "other key": 401, "hs256": 401, "none": 401}


# Bodies ----------------------------------------------------------------------------------------


def test_oversize_bodies_get_413_and_never_reach_the_log(
    topics: Settings, secured: str, admin: httpx.Client
) -> None:
    """Starts and definitions over the body limit get 413; none of them is published."""
    assert admin.post("/v1/metadata/workflows", json=human_flow("guarded")).status_code == 201
    huge_input = {"blob": "x" * (2 * MIB)}
    start = {"name": "guarded", "workflowId": "huge-start", "input": huge_input}
    assert admin.post("/v1/workflows", json=start).status_code == 413

    chunked_body = orjson.dumps({**start, "workflowId": "huge-chunked"})
    streamed = admin.post(
        "/v1/workflows",
        content=(chunked_body[i : i + 65536] for i in range(0, len(chunked_body), 65536)),
        headers={"Content-Type": "application/json"},
    )
    assert "content-length" not in streamed.request.headers
    assert streamed.status_code == 413, streamed.text

    definition = {**human_flow("huge_flow"), "description": "d" * (MIB + 1)}
    refused = admin.post("/v1/metadata/workflows", json=definition)
    assert refused.status_code == 413
    assert "limit" in refused.json()["detail"]

    # The API answers a start only once the broker acknowledged it, so after the marker's 201
    # everything sent before it is on the topic.
    marker = admin.post("/v1/workflows", json={"name": "guarded", "workflowId": "marker"})
    assert marker.status_code == 201, marker.text
    names = Topics(topics.topic_prefix)
    requests = record_keys(topics, names.requests, topics.partitions)
    assert requests == ["marker"]
    assert record_keys(topics, names.definitions, 1) == ["guarded:1"]
    assert admin.get("/v1/metadata/workflows/huge_flow").status_code == 404


def nested(depth: int) -> Json:
    """An object nested ``depth`` levels deep."""
    value: Json = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def test_json_the_log_cannot_encode_is_refused_and_not_published(
    topics: Settings, secured: str, admin: httpx.Client
) -> None:
    """Valid JSON that has no Avro/JSON encoding gets 400, and a list registers whole or not."""
    assert admin.post("/v1/metadata/workflows", json=human_flow("guarded")).status_code == 201
    starts = {
        "big": b'{"name": "guarded", "workflowId": "big", "input": {"n": 18446744073709551616}}',
        "deep": json.dumps(
            {"name": "guarded", "workflowId": "deep", "input": nested(300)}
        ).encode(),
        "surrogate": b'{"name": "guarded", "workflowId": "surrogate", "input": {"s": "\\ud800"}}',
    }
    for label, content in starts.items():
        response = admin.post(
            "/v1/workflows", content=content, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, (label, response.text)
        # Refused when parsed (the start fast path's strict JSON parser) or when encoded.
        detail = str(response.json()["detail"])
        assert "cannot encode StartWorkflow" in detail or "Invalid JSON" in detail, detail
    for label, bad in {"big": {"x": 2**70}, "deep": nested(300)}.items():
        pair = [human_flow(f"first_{label}"), {**human_flow(f"second_{label}"), "variables": bad}]
        response = admin.post("/v1/metadata/workflows", json=pair)
        assert response.status_code == 400, (label, response.text)
    tasks = [{"name": "fine"}, {"name": "huge", "retryCount": 2**64}]
    assert admin.post("/v1/metadata/taskdefs", json=tasks).status_code == 400

    marker = admin.post("/v1/workflows", json={"name": "guarded", "workflowId": "marker"})
    assert marker.status_code == 201, marker.text
    names = Topics(topics.topic_prefix)
    assert record_keys(topics, names.requests, topics.partitions) == ["marker"]
    assert record_keys(topics, names.definitions, 1) == ["guarded:1"]


# A start body that fails validation, and the field its error names.
INVALID_STARTS: dict[str, tuple[dict[str, Json], str]] = {
    "unknown field": ({"name": "guarded", "bogus": 1}, "bogus"),
    "input a list": ({"name": "guarded", "input": [1, 2]}, "input"),
    "version a string": ({"name": "guarded", "version": "one"}, "version"),
    "version zero": ({"name": "guarded", "version": 0}, "version"),
    "name with spaces": ({"name": "bad name!"}, "name"),
    "name missing": ({"input": {}}, "name"),
    "id with a slash": ({"name": "guarded", "workflowId": "a/b"}, "workflowId"),
}


@pytest.mark.parametrize(("body", "named"), list(INVALID_STARTS.values()), ids=list(INVALID_STARTS))
def test_invalid_start_bodies_are_refused_naming_the_field(
    secured: str, admin: httpx.Client, body: dict[str, Json], named: str
) -> None:
    """A start body with an unknown, missing or mistyped field gets 4xx naming that field."""
    response = admin.post("/v1/workflows", json=body)
    assert response.status_code in (400, 422), response.text
    locations = [error["loc"] for error in response.json()["detail"]]
    assert any(named in location for location in locations), locations


def test_malformed_json_is_refused(secured: str, admin: httpx.Client) -> None:
    """A body that is not JSON, or not an object, gets 4xx; nothing is started."""
    for content in (b'{"name": "guarded",', b"\xff\xfe", b"[1, 2]", b'"guarded"'):
        response = admin.post(
            "/v1/workflows", content=content, headers={"Content-Type": "application/json"}
        )
        assert 400 <= response.status_code < 500, (content, response.text)
    assert admin.get("/v1/workflows").json()["total"] == 0
