"""Abuse benchmark: what pathological requests and floods cost the real model server.

    .venv/bin/python benchmarks/bench_abuse.py --out docs/abuse-bench.json
    .venv/bin/python benchmarks/bench_abuse.py --server-root /tmp/before  # an older checkout

The server (``python -m app``, ONNX Runtime on the CPU, the pretrained MiniLM artifact of
``bench_serving`` with ``max_length`` 128) runs as its own process on a free port; its resident
memory is read from ``/proc`` every 20 ms. Each case reports the answers' statuses, their
latency, the server's peak RSS growth over its RSS before the case, and its RSS after it:

- ``long_texts``: 8 concurrent requests of one 1 MiB text each (within the Lambda's 1 MiB);
- ``huge_body``: 2 concurrent requests of one ~5.9 MB text each (SageMaker's 6 MB limit);
- ``at_the_limits``: one request of as many texts of 2.9 KB as the server takes (its
  ``SERVE_MAX_INSTANCES``, from its ``serving limits`` log line; 2048 for servers that do not
  log it): a request at the documented limits;
- ``flood_10x_capacity``: 64-headline requests sent open loop at 10x the rate the server
  answers (measured first: 4 closed-loop clients), each on a new connection, whatever the
  answers, for ``--flood-seconds``;
- ``hammer_10x_queue``: 10 x queue size / 64 closed-loop clients, each sending again 10 ms
  after a 429 (far past any real client's Retry-After);

with ``/ping`` probed every 50 ms on its own connection during both floods: p99 of the 429s,
of the 200s and of ``/ping``, 5xx count, RSS after.

``--server-root`` runs ``python -m app`` from another checkout (e.g. ``git archive`` of an
older commit), so the same cases measure a before/after pair in one run of this script.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from devtools.artifacts import build_minilm_artifact
from devtools.data import headlines
from devtools.paths import REPO_ROOT
from devtools.processes import ServerProcess, start_model_server, stop_model_server

MIB = 1024 * 1024


class RssSampler:
    """Samples a process's VmRSS every 20 ms on a thread; ``peak()`` since the last reset."""

    def __init__(self, pid: int) -> None:
        self._path = Path(f"/proc/{pid}/status")
        self._peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def now(self) -> float:
        try:
            status = self._path.read_text()
        except OSError:
            return 0.0
        line = next(line for line in status.splitlines() if line.startswith("VmRSS"))
        return int(line.split()[1]) / 1024

    def reset(self) -> float:
        self._peak = self.now()
        return self._peak

    def peak(self) -> float:
        return self._peak

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self._peak = max(self._peak, self.now())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


async def _post(
    port: int, body: bytes, limit_s: float, content_type: str = "application/json"
) -> tuple[int, float]:
    """One request on its own connection: (status, seconds); status 0 if it timed out."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(limit_s):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(
                    b"POST /invocations HTTP/1.1\r\nHost: bench\r\nContent-Type: "
                    + content_type.encode()
                    + b"\r\nContent-Length: "
                    + str(len(body)).encode()
                    + b"\r\n\r\n"
                    + body
                )
                await writer.drain()
                head = await _read_response(reader)
            finally:
                writer.close()
    except TimeoutError:
        return 0, time.perf_counter() - started
    return int(head.split()[1]), time.perf_counter() - started


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    """Read one response; return its head (status line and headers)."""
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            await reader.readexactly(int(line.split(b":")[1]))
    return head


def _burst(port: int, bodies: Sequence[bytes], timeout: float) -> list[tuple[int, float]]:
    async def all_at_once() -> list[tuple[int, float]]:
        return list(await asyncio.gather(*(_post(port, body, timeout) for body in bodies)))

    return asyncio.run(all_at_once())


def case(
    name: str, server: ServerProcess, rss: RssSampler, bodies: Sequence[bytes], timeout: float
) -> dict[str, Any]:
    before = rss.reset()
    started = time.perf_counter()
    answers = _burst(server.port, bodies, timeout)
    wall = time.perf_counter() - started
    time.sleep(1.0)  # let the allocator give back what it will
    statuses = Counter(str(status) for status, _ in answers)
    return {
        "case": name,
        "requests": len(bodies),
        "body_mb": round(max(len(body) for body in bodies) / 1e6, 2),
        "statuses": dict(statuses),
        "max_latency_s": round(max(seconds for _, seconds in answers), 2),
        "wall_s": round(wall, 2),
        "rss_before_mib": round(before, 1),
        "rss_peak_growth_mib": round(rss.peak() - before, 1),
        "rss_after_mib": round(rss.now(), 1),
    }


def long_text(texts: Sequence[str], chars: int) -> str:
    joined = " ".join(texts)
    return (joined * (chars // len(joined) + 1))[:chars]


# ---------------------------------------------------------------- the flood


async def _flood_client(
    port: int, body: bytes, stop_at: float, out: dict[str, list[float]]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while (now := time.perf_counter()) < stop_at:
            writer.write(
                b"POST /invocations HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
            head = await _read_response(reader)
            status = head.split()[1].decode()
            out.setdefault(status, []).append(time.perf_counter() - now)
            if status == "429":
                await asyncio.sleep(0.01)  # a client that ignores Retry-After, nearly
    finally:
        writer.close()


async def _ping_probe(port: int, stop_at: float, out: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while (now := time.perf_counter()) < stop_at:
            writer.write(b"GET /ping HTTP/1.1\r\nHost: bench\r\n\r\n")
            await _read_response(reader)
            out.append(time.perf_counter() - now)
            await asyncio.sleep(0.05)
    finally:
        writer.close()


def p99_ms(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000, 1)


def closed_loop(port: int, body: bytes, clients: int, seconds: float) -> dict[str, list[float]]:
    """``clients`` connections, each sending again as soon as it has its answer."""
    latencies: dict[str, list[float]] = {}

    async def run() -> None:
        stop_at = time.perf_counter() + seconds
        await asyncio.gather(
            *(_flood_client(port, body, stop_at, latencies) for _ in range(clients))
        )

    asyncio.run(run())
    return latencies


def flood(
    name: str,
    server: ServerProcess,
    rss: RssSampler,
    body: bytes,
    *,
    seconds: float,
    rate: float | None = None,
    clients: int = 0,
) -> dict[str, Any]:
    """Open loop at ``rate`` requests/s (each on a new connection, whatever the answers), or
    closed loop with ``clients`` connections; ``/ping`` probed every 50 ms meanwhile."""
    latencies: dict[str, list[float]] = {}
    pings: list[float] = []

    async def open_loop(stop_at: float) -> None:
        assert rate is not None
        started, sent, pending = time.perf_counter(), 0, []
        while (now := time.perf_counter()) < stop_at:
            due = started + sent / rate
            if due > now:
                await asyncio.sleep(due - now)
            pending.append(asyncio.create_task(_post(server.port, body, 120.0)))
            sent += 1
        for status, elapsed in await asyncio.gather(*pending):
            latencies.setdefault(str(status), []).append(elapsed)

    async def run() -> None:
        stop_at = time.perf_counter() + seconds
        load = (
            [open_loop(stop_at)]
            if rate is not None
            else [_flood_client(server.port, body, stop_at, latencies) for _ in range(clients)]
        )
        await asyncio.gather(*load, _ping_probe(server.port, stop_at, pings))

    before = rss.reset()
    asyncio.run(run())
    time.sleep(2.0)
    after = rss.now()
    return {
        "case": name,
        "requests_per_s": None if rate is None else round(rate, 1),
        "clients": clients or None,
        "seconds": seconds,
        "statuses": {status: len(values) for status, values in sorted(latencies.items())},
        "p99_429_ms": p99_ms(latencies.get("429", [])),
        "p99_200_ms": p99_ms(latencies.get("200", [])),
        "ping_p99_ms": p99_ms(pings),
        "ping_max_ms": round(max(pings, default=0.0) * 1000, 1),
        "5xx": sum(len(v) for status, v in latencies.items() if status.startswith("5")),
        "rss_before_mib": round(before, 1),
        "rss_peak_growth_mib": round(rss.peak() - before, 1),
        "rss_after_mib": round(after, 1),
    }


def server_limits(log: Path) -> tuple[int, int]:
    """(queue size, max instances) the server runs with, from its ``serving limits`` log
    line; the fixed defaults of servers from before the limits were derived."""
    for line in log.read_text().splitlines():
        if '"serving limits"' in line:
            entry = json.loads(line)
            return int(entry["queue_size"]), int(entry["max_instances"])
    return 4096, 2048


# ---------------------------------------------------------------- main


def start_server(root: Path, base: Path, log: Path, **settings: str) -> ServerProcess:
    """``python -m app`` run from ``root`` (the checkout under test)."""
    # PYTHONPATH: ahead of the installed (editable) checkout.
    return start_model_server(base, log, timeout=300, cwd=root, PYTHONPATH=str(root), **settings)


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.work)
    model_dir = build_minilm_artifact(work / "opt_ml" / "model")
    texts = headlines()
    report: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "server_root": str(args.server_root),
        "cases": [],
    }
    root = Path(args.server_root)
    settings = dict(item.split("=", 1) for item in args.server_env)
    log = work / "server.log"
    server = start_server(root, model_dir.parent, log, **settings)
    rss = RssSampler(server.process.pid)
    try:
        cases = report["cases"]
        one_mib = json.dumps({"inputs": long_text(texts, MIB)}).encode()
        cases.append(case("long_texts", server, rss, [one_mib] * 8, args.timeout))
        print(json.dumps(cases[-1]), flush=True)
        if not args.skip_huge:
            huge = json.dumps({"inputs": long_text(texts, 5_900_000)}).encode()
            cases.append(case("huge_body", server, rss, [huge] * 2, args.timeout))
            print(json.dumps(cases[-1]), flush=True)
        count = args.max_instances or server_limits(log)[1]
        report["at_the_limits_texts"] = count
        at_limits = json.dumps({"inputs": [long_text(texts[i:], 2900) for i in range(count)]})
        cases.append(case("at_the_limits", server, rss, [at_limits.encode()], args.timeout))
        print(json.dumps(cases[-1]), flush=True)
    finally:
        stop_model_server(server)
        rss.stop()
    if args.no_flood:
        return report
    # Floods of 64-headline requests against a fresh server with its default limits.
    server = start_server(root, model_dir.parent, log, **settings)
    rss = RssSampler(server.process.pid)
    try:
        per_request = 64
        body = json.dumps({"inputs": list(texts[:per_request])}).encode()
        served = closed_loop(server.port, body, clients=4, seconds=args.flood_seconds / 2)
        capacity = len(served.get("200", [])) / (args.flood_seconds / 2)  # requests/s
        report["capacity_requests_per_s"] = round(capacity, 2)
        print(json.dumps({"capacity_requests_per_s": capacity}), flush=True)
        for result in (
            flood(
                "flood_10x_capacity",
                server,
                rss,
                body,
                seconds=args.flood_seconds,
                rate=10 * max(capacity, 0.1),
            ),
            flood(
                "hammer_10x_queue",
                server,
                rss,
                body,
                seconds=args.flood_seconds,
                clients=args.hammer_clients or max(1, 10 * server_limits(log)[0] // per_request),
            ),
        ):
            report["cases"].append(result)
            print(json.dumps(result), flush=True)
    finally:
        stop_model_server(server)
        rss.stop()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="write the report (JSON) here")
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "bench_abuse"))
    parser.add_argument("--server-root", default=str(REPO_ROOT), help="checkout to serve from")
    parser.add_argument(
        "--server-env", nargs="*", default=[], metavar="NAME=VALUE", help="SERVE_* settings"
    )
    parser.add_argument(
        "--max-instances", type=int, default=0, help="texts in at_the_limits (0: the server's)"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="client timeout, seconds")
    parser.add_argument("--skip-huge", action="store_true", help="leave out huge_body")
    parser.add_argument("--no-flood", action="store_true", help="leave out the floods")
    parser.add_argument(
        "--hammer-clients", type=int, default=0, help="clients of hammer (0: 10 x queue / 64)"
    )
    parser.add_argument("--flood-seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    report = run(args)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
