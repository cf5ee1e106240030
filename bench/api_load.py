"""Load generators for the API benchmark: ``wrk`` with a Lua POST script, or Python asyncio.

Both hold ``concurrency`` keep-alive connections, each sending a request as soon as the previous
answer arrived (a closed loop), for a warm-up and then a measured duration.
Each prints (``main``) or returns (``wrk``) one JSON object: requests and errors counted in
the measured window, its length, and latency percentiles in milliseconds.

Run on its own it is the Python generator, in its own process so that its CPU is not the
API's: ``api_load.py URL --body JSON [--token T] [--concurrency 64] [--duration 10]
[--client raw|httpx] [--rate R]``. ``raw`` writes HTTP/1.1 on asyncio streams by hand;
``httpx`` is the usual client and costs several times the CPU per request. With ``--rate`` the
connections send R requests/s between them (an open loop) instead of one after another.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

WRK = "/usr/bin/wrk"
WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = os.getenv("LOAD_BODY")
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("LOAD_TOKEN") or ""
if token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "errors": %d, "p50": %.3f, "p95": %.3f, ' ..
    '"p99": %.3f, "max": %.3f}\\n',
    summary.requests, summary.duration / 1e6,
    e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50) / 1e3, latency:percentile(95) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3))
end
"""


def wrk_available() -> bool:
    """Whether ``wrk`` is installed."""
    return os.access(WRK, os.X_OK)


def wrk(
    url: str, body: str, *, token: str = "", concurrency: int = 64, duration: float = 10.0,
    warmup: float = 2.0,
) -> dict[str, Any]:  # fmt: skip
    """Run wrk (one thread) for a warm-up, then for ``duration``; return the measured run.

    ``accepted`` counts the 201s of both runs: every one is a workflow the processor will start.
    """
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    env = {**os.environ, "LOAD_BODY": body, "LOAD_TOKEN": token}
    runs = []
    try:
        for seconds in (warmup, duration):
            argv = [WRK, "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s"]
            done = subprocess.run(
                [*argv, "-s", script.name, url], env=env, capture_output=True, text=True,
                check=True, timeout=seconds + 30,
            )  # fmt: skip
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    finally:
        Path(script.name).unlink()
    result: dict[str, Any] = runs[-1]
    result["accepted"] = sum(run["requests"] - run["errors"] for run in runs)
    return result


class Recorder:
    """Latencies and errors of the requests due inside the measured window.

    ``seconds`` runs to the last of their answers, so requests/seconds is the rate served even
    when a fixed rate was offered and the server fell behind.
    """

    def __init__(self, warmup: float, duration: float, rate: float = 0.0) -> None:
        self.zero = time.monotonic()
        self.begin = self.zero + warmup
        self.end = self.begin + duration
        self.rate = rate
        self.sent = 0
        self.latencies: list[float] = []
        self.errors = 0
        self.accepted = 0
        self.last = self.end  # when the measured window's last answer arrived

    async def slot(self) -> float:
        """When the next request is due: now in a closed loop; at ``rate`` per second if set.

        At a fixed rate the connection that is free takes the next slot; a slot taken late still
        counts from when it was due, so a server that falls behind shows it in the latency.
        """
        if self.rate <= 0:
            return time.monotonic()
        due = self.zero + self.sent / self.rate
        self.sent += 1
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        return due

    def record(self, started: float, ok: bool) -> None:
        """Count one answer to a request sent at ``started``."""
        self.accepted += ok
        if self.begin <= started < self.end:
            self.last = max(self.last, time.monotonic())
            if ok:
                self.latencies.append((time.monotonic() - started) * 1000)
            else:
                self.errors += 1

    def result(self) -> dict[str, Any]:
        """The measured window's figures."""
        ordered = sorted(self.latencies)

        def at(pct: float) -> float:
            return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))] if ordered else 0

        return {
            "requests": len(ordered) + self.errors,
            "seconds": self.last - self.begin,
            "errors": self.errors,
            **{f"p{p}": round(at(p), 3) for p in (50, 95, 99)},
            "max": round(ordered[-1], 3) if ordered else 0,
            "accepted": self.accepted,
        }


async def _httpx_loop(url: str, body: bytes, headers: dict[str, str], rec: Recorder) -> None:
    """One keep-alive connection's requests (see Recorder.slot), through its own httpx client.

    One client per connection: a shared client's pool slows down sharply with 64 connections.
    """
    async with httpx.AsyncClient(headers=headers, timeout=30.0) as client:
        while (started := await rec.slot()) < rec.end:
            try:
                response = await client.post(url, content=body)
                rec.record(started, response.status_code == 201)
            except httpx.HTTPError:
                rec.record(started, False)


async def _raw_loop(url: str, body: bytes, headers: dict[str, str], rec: Recorder) -> None:
    """One keep-alive connection's requests, writing HTTP/1.1 by hand (a fraction of the CPU)."""
    target = httpx.URL(url)
    lines = [f"POST {target.raw_path.decode()} HTTP/1.1", f"host: {target.netloc.decode()}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    request = ("\r\n".join([*lines, f"content-length: {len(body)}", "", ""])).encode() + body
    reader, writer = await asyncio.open_connection(target.host, target.port)
    while (started := await rec.slot()) < rec.end:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        match = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        await reader.readexactly(int(match.group(1)) if match else 0)
        rec.record(started, head[9:12] == b"201")
    writer.close()


async def generate(url: str, args: argparse.Namespace, rec: Recorder) -> None:
    """Run ``args.concurrency`` loops, each over its own keep-alive connection."""
    headers = {"content-type": "application/json"}
    if args.token:
        headers["authorization"] = f"Bearer {args.token}"
    loop = _raw_loop if args.client == "raw" else _httpx_loop
    body = args.body.encode()
    await asyncio.gather(*(loop(url, body, headers, rec) for _ in range(args.concurrency)))


def main() -> None:
    """Run the Python generator and print its JSON result (plus its own CPU seconds)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--body", required=True, help="the JSON request body")
    parser.add_argument("--token", default="", help="a bearer token")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw")
    parser.add_argument("--rate", type=float, default=0.0, help="requests/s; 0: closed loops")
    args = parser.parse_args()
    try:
        from uvloop import run  # noqa: PLC0415 - optional, as for uvicorn
    except ImportError:
        run = asyncio.run  # type: ignore[assignment]
    rec = Recorder(args.warmup, args.duration, args.rate)
    run(generate(args.url, args, rec))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({**rec.result(), "cpuSeconds": usage.ru_utime + usage.ru_stime}))


if __name__ == "__main__":
    main()
