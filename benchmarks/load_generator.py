"""The closed-loop HTTP load generator every serving benchmark drives its servers with.

``concurrency`` keep-alive clients each send one real headline per request, back to back,
for a time or a number of requests; a probe asks ``/ping`` every 100 ms on its own connection
(it must stay fast while the model is busy). The clients are a minimal asyncio HTTP/1.1
client, so the generator takes as little of the shared CPU as possible; it still shares the
machine with the servers it measures.

The stable entry point (other benchmarks import it)::

    run_load(url, texts, concurrency=32, seconds=15)       # or requests=N
    -> LoadResult(texts_per_s, p50_ms, p95_ms, p99_ms, errors, ...)

``body`` and ``path`` adapt it to other servers' request formats (TorchServe's
``/predictions/<model>``); ``server_cpu_seconds`` measures what the server spent meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def json_inputs(text: str) -> bytes:
    """The body our server and the Hugging Face toolkit take: ``{"inputs": text}``."""
    return json.dumps({"inputs": text}).encode()


@dataclass(frozen=True)
class LoadResult:
    """What one load level measured; latencies of successful requests only."""

    concurrency: int
    requests: int  # successful requests measured (after the warm-up)
    texts_per_s: float
    p50_ms: float | None  # None: no request finished inside the measured window
    p95_ms: float | None
    p99_ms: float | None
    errors: int  # answers other than 200, over the whole run (warm-up included)
    ping_max_ms: float | None  # slowest /ping meanwhile; None without a probe

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_load(
    url: str,
    texts: Sequence[str],
    *,
    concurrency: int,
    seconds: float | None = None,
    requests: int | None = None,
    warmup_s: float | None = None,
    path: str = "/invocations",
    body: Callable[[str], bytes] = json_inputs,
    content_type: str = "application/json",
    ping_path: str | None = "/ping",
) -> LoadResult:
    """Drive ``url`` with ``concurrency`` clients for ``seconds`` (measured after a warm-up,
    by default a quarter of it, at most 3 s) or until ``requests`` measured requests are done
    (after ``warmup_s``, default 0). texts/s counts requests that started in the measured
    window over its length."""
    if (seconds is None) == (requests is None):
        raise ValueError("give seconds or requests, not both")
    if warmup_s is None:
        warmup_s = min(3.0, seconds / 4) if seconds is not None else 0.0
    split = urlsplit(url)
    host, port = split.hostname or "127.0.0.1", split.port or 80
    bodies = [body(text) for text in texts]
    head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n".encode()
    return asyncio.run(
        _drive(
            host,
            port,
            head,
            bodies,
            concurrency,
            _Budget(warmup_s, seconds, requests),
            None if ping_path is None else ping_path.encode(),
        )
    )


@dataclass
class _Budget:
    warmup_s: float
    seconds: float | None
    requests: int | None
    record_from: float = 0.0
    stop_at: float = float("inf")
    started: int = 0

    def begin(self) -> None:
        now = time.perf_counter()
        self.record_from = now + self.warmup_s
        if self.seconds is not None:
            self.stop_at = self.record_from + self.seconds

    def next_request(self, now: float) -> bool:
        """Whether a client may start one more request now."""
        if now >= self.stop_at:
            return False
        if self.requests is not None and now >= self.record_from:
            if self.started >= self.requests:
                return False
            self.started += 1
        return True


async def _drive(
    host: str,
    port: int,
    head: bytes,
    bodies: Sequence[bytes],
    concurrency: int,
    budget: _Budget,
    ping_path: bytes | None,
) -> LoadResult:
    latencies: list[float] = []
    pings: list[float] = []
    done = asyncio.Event()
    budget.begin()
    clients = asyncio.gather(
        *(_client(host, port, head, bodies, budget, latencies) for _ in range(concurrency))
    )

    async def load() -> list[int]:
        try:
            return await clients
        finally:
            done.set()

    probe = (
        None
        if ping_path is None
        else asyncio.create_task(_probe_ping(host, port, ping_path, done, budget, pings))
    )
    errors = await load()
    if probe is not None:
        await probe
    window = budget.seconds or (time.perf_counter() - budget.record_from)
    latencies.sort()

    def pct(p: float) -> float | None:
        if not latencies:  # no request finished inside the window
            return None
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 1)

    return LoadResult(
        concurrency=concurrency,
        requests=len(latencies),
        texts_per_s=round(len(latencies) / window, 1),
        p50_ms=pct(0.50),
        p95_ms=pct(0.95),
        p99_ms=pct(0.99),
        errors=sum(errors),
        ping_max_ms=None if ping_path is None else round(max(pings, default=0.0) * 1000, 1),
    )


async def _client(
    host: str,
    port: int,
    head: bytes,
    bodies: Sequence[bytes],
    budget: _Budget,
    out: list[float],
) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    errors = 0
    index = random.randrange(len(bodies))
    try:
        while budget.next_request(now := time.perf_counter()):
            payload = bodies[index % len(bodies)]
            index += 1
            writer.write(
                head + b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload
            )
            status = await _read_response(reader)
            if status != 200:
                errors += 1
            elif now >= budget.record_from:
                out.append(time.perf_counter() - now)
    finally:
        writer.close()
    return errors


async def _read_response(reader: asyncio.StreamReader) -> int:
    """The status of one response, whose body is read (Content-Length) and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        if line.lower().startswith(b"content-length:"):
            await reader.readexactly(int(line.split(b":")[1]))
    return int(head.split(b" ", 2)[1])


async def _probe_ping(
    host: str,
    port: int,
    path: bytes,
    done: asyncio.Event,
    budget: _Budget,
    out: list[float],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while not done.is_set():
            now = time.perf_counter()
            writer.write(b"GET " + path + b" HTTP/1.1\r\nHost: bench\r\n\r\n")
            await _read_response(reader)
            if now >= budget.record_from:
                out.append(time.perf_counter() - now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 0.1)
    finally:
        writer.close()


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds so far of a process, all its descendants and every process
    of the session it leads: a TorchServe or multi-model-server front end and its workers
    count together, even the Java front end that its launcher left behind (re-parented, but
    still in the session the peer launcher started)."""
    stats: dict[int, tuple[int, int, int]] = {}  # pid: (parent, session, CPU ticks)
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = stat_file.read_text()
        except OSError:
            continue  # it ended meanwhile
        # After the command name: state, ppid, pgrp, session, ..., utime (12th), stime (13th).
        fields = stat.rsplit(")", 1)[1].split()
        stats[int(stat_file.parent.name)] = (
            int(fields[1]),
            int(fields[3]),
            int(fields[11]) + int(fields[12]),
        )

    def counted(current: int) -> bool:
        while current > 1:
            if current == pid or stats[current][1] == pid:
                return True
            current = stats[current][0] if current in stats else 0
        return False

    ticks = sum(cpu for current, (_, _, cpu) in stats.items() if counted(current))
    return ticks / os.sysconf("SC_CLK_TCK")


def drive_measuring_cpu(pid: int, url: str, texts: Sequence[str], **load: Any) -> dict[str, Any]:
    """``run_load`` plus the server's CPU use meanwhile, in cores (1.0: one core all along;
    the warm-up included)."""
    cpu_before, started = server_cpu_seconds(pid), time.perf_counter()
    result = run_load(url, texts, **load).as_dict()
    wall = time.perf_counter() - started
    result["server_cpu_cores"] = round((server_cpu_seconds(pid) - cpu_before) / wall, 2)
    return result
