"""The fake LLM server's record of requests: when each one arrived and was answered."""

from __future__ import annotations

import time

import httpx

from workers.llm.fake_server import FakeLLM

CHAT = {"model": "m", "messages": [{"role": "user", "content": "ping"}]}


def test_requests_record_when_they_arrived_and_were_answered() -> None:
    """received_at and answered_at lie inside the client's call, the scripted delay apart."""
    with FakeLLM([{"match": "ping", "reply": "pong", "delay_ms": 50}]) as fake:
        before = time.time()
        reply = httpx.post(f"{fake.base_url}/chat/completions", json=CHAT, timeout=10)
        after = time.time()
    assert reply.json()["choices"][0]["message"]["content"] == "pong"
    [request] = fake.requests
    assert request.answered_at is not None
    assert before <= request.received_at <= request.answered_at <= after
    assert request.answered_at - request.received_at >= 0.05


def test_each_request_on_a_kept_alive_connection_gets_its_own_times() -> None:
    """Two requests on one connection: the second arrives after the first was answered."""
    with FakeLLM([{"match": "ping", "delay_ms": 20}]) as fake, httpx.Client(timeout=10) as http:
        for _ in range(2):
            http.post(f"{fake.base_url}/chat/completions", json=CHAT).raise_for_status()
    first, second = fake.requests
    assert first.answered_at is not None
    assert second.answered_at is not None
    assert first.answered_at <= second.received_at < second.answered_at
    assert second.answered_at - second.received_at >= 0.02


def test_answer_called_directly_records_the_time_it_was_given() -> None:
    """answer() stamps the request with received_at; it stays unanswered until a reply is sent."""
    fake = FakeLLM()
    status, body, delay = fake.answer("GET", "/v1/models", {}, None, received_at=12.5)
    assert (status, delay) == (200, 0.0)
    assert body["object"] == "list"
    [request] = fake.requests
    assert (request.received_at, request.answered_at) == (12.5, None)
