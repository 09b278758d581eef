"""Peer benchmark: our model server against the servers users would pick instead, same model,
same load generator, alternated, in one run.

    benchmarks/peers/setup.sh                      # once: the peers' venvs, outside the repo
    .venv/bin/python benchmarks/bench_peers.py --seconds 15 --rounds 3 --out /tmp/peers.json

Contenders, all on one MiniLM artifact (``--model DIR``, an artifact directory named
``model``, or by default the serving benchmark's: pretrained all-MiniLM-L6-v2, a fresh
seeded 4-class head, ``model.onnx`` and its variants):

- ``ours-<variant>``: ``python -m app`` from this checkout, per ``--ours`` entry: ``fp32``
  (ONNX Runtime, ``model.onnx``), ``auto`` (``SERVE_RUNTIME=auto``: the fastest variant whose
  recorded accuracy check passed; a fresh head has none, so auto serves fp32 there: pass a
  trained artifact), or any ``SERVE_ONNX_VARIANT`` value to force it;
- ``hf-toolkit``: the Hugging Face SageMaker inference toolkit as its container runs it
  (multi-model-server, its default workers, a pipeline per request, PyTorch fp32);
- ``torchserve``: TorchServe with its documented batching (``--ts-batch-size``,
  ``--ts-max-batch-delay-ms``, ``--ts-workers`` x 1 torch thread), PyTorch fp32;
- ``pipeline``: the floor, a ``transformers`` pipeline call per request behind uvicorn.

Every round drives every contender at every ``--concurrency`` for ``--seconds`` (after a
short warm-up), the contenders' order rotating from round to round. The report has each
round's figures, the medians per contender and level, and our contenders' ratios to each
peer; a markdown table closes the output.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from baseline_server import start_baseline
from bench_serving import auto_variant
from load_generator import drive_measuring_cpu
from peers.launchers import (
    DEFAULT_VENVS,
    PeerProcess,
    TorchServeConfig,
    start_hf_toolkit,
    start_torchserve,
)

from devtools.artifacts import build_minilm_artifact
from devtools.data import headlines
from devtools.processes import ServerProcess, start_model_server

PEERS = ("hf-toolkit", "torchserve", "pipeline")
# Our server per --ours entry: fp32 is the fp32 ONNX file; auto is the server's default.
OURS_ENV = {
    "fp32": {"SERVE_RUNTIME": "onnx", "SERVE_ONNX_VARIANT": "fp32"},
    "auto": {"SERVE_RUNTIME": "auto"},
    "optimized": {"SERVE_RUNTIME": "onnx", "SERVE_ONNX_VARIANT": "optimized"},
    "int8": {"SERVE_RUNTIME": "onnx", "SERVE_ONNX_VARIANT": "int8"},
    "torch": {"SERVE_RUNTIME": "torch"},
}


# -- the load: the serving benchmark's load generator ---------------------------------------------


def measure(
    contender: Contender, texts: Sequence[str], concurrency: int, seconds: float
) -> dict[str, Any]:
    """The load generator's figures with the contender's CPU use (all its processes), or,
    when the server dropped a connection (the load generator gives up on the point then), a
    point with no figures that says so."""
    try:
        return drive_measuring_cpu(
            contender.pid, contender.url, texts, concurrency=concurrency, seconds=seconds
        )
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        failure = f"{type(exc).__name__}: {exc}"
        empty = dict.fromkeys(("p50_ms", "p95_ms", "p99_ms", "errors"))
        return {"concurrency": concurrency, "texts_per_s": 0.0, **empty, "failed": failure}


# -- contenders ---------------------------------------------------------------------------------


class Contender:
    """A running server: its name, URL, process id (its CPU use counts its descendants too)
    and how to stop it."""

    def __init__(self, name: str, port: int, pid: int, stop: Callable[[], None]) -> None:
        self.name, self.pid, self.stop = name, pid, stop
        self.url = f"http://127.0.0.1:{port}"


def start_ours(variant: str, model_dir: Path, work: Path, threads: int) -> Contender:
    env = dict(OURS_ENV[variant])
    if threads:
        env["SERVE_TORCH_THREADS"] = str(threads)
    server: ServerProcess = start_model_server(
        model_dir.parent, work / f"ours-{variant}.log", timeout=300, **env
    )
    return Contender(f"ours-{variant}", server.port, server.process.pid, server.stop)


def start_peer(name: str, model_dir: Path, work: Path, args: argparse.Namespace) -> Contender:
    peer: PeerProcess | ServerProcess
    if name == "hf-toolkit":
        peer = start_hf_toolkit(model_dir, work / name, Path(args.venvs))
    elif name == "torchserve":
        peer = start_torchserve(model_dir, work / name, torchserve_config(args), Path(args.venvs))
    else:
        threads = args.pipeline_threads or os.cpu_count() or 1
        peer = start_baseline(model_dir, work / "pipeline.log", threads)
    return Contender(name, peer.port, peer.process.pid, peer.stop)


def torchserve_config(args: argparse.Namespace) -> TorchServeConfig:
    return TorchServeConfig(
        batch_size=args.ts_batch_size,
        max_batch_delay_ms=args.ts_max_batch_delay_ms,
        workers=args.ts_workers,
        job_queue_size=args.ts_job_queue_size,
    )


# -- the run ------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    model_dir = Path(args.model) if args.model else build_minilm_artifact(work / "opt_ml" / "model")
    texts = headlines()
    report: dict[str, Any] = {
        "model": str(model_dir),
        "auto_serves": auto_variant(model_dir),
        "seconds": args.seconds,
        "rounds": args.rounds,
        "torchserve": torchserve_config(args).__dict__,
        "load_average_at_start": os.getloadavg(),
        "results": [],
    }
    print(json.dumps({k: v for k, v in report.items() if k != "results"}), flush=True)
    contenders: list[Contender] = []
    try:
        for variant in args.ours:
            contenders.append(start_ours(variant, model_dir, work, args.threads))
        for name in args.peers:
            contenders.append(start_peer(name, model_dir, work, args))
        for round_ in range(args.rounds):
            for concurrency in args.concurrency:
                shift = round_ % len(contenders)
                for contender in contenders[shift:] + contenders[:shift]:
                    result = measure(contender, texts, concurrency, args.seconds)
                    result |= {
                        "name": contender.name,
                        "round": round_,
                        "load_average": round(os.getloadavg()[0], 2),
                        "at": time.strftime("%H:%M:%S", time.gmtime()),
                    }
                    print(json.dumps(result), flush=True)
                    report["results"].append(result)
    finally:
        for contender in reversed(contenders):
            contender.stop()
    report["load_average_at_end"] = os.getloadavg()
    report["summary"] = summarize(report["results"])
    report["ratios"] = ratios(report["summary"])
    return report


def summarize(results: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per contender and concurrency: the median of the rounds' texts/s, p50 and p99, each
    round's texts/s, and the errors of all rounds."""
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for result in results:
        level = summary.setdefault(result["name"], {}).setdefault(
            str(result["concurrency"]), {"rounds": []}
        )
        level["rounds"].append(result)
    for levels in summary.values():
        for key, level in levels.items():
            rounds = level.pop("rounds")
            levels[key] = {
                "texts_per_s": statistics.median(r["texts_per_s"] for r in rounds),
                "p50_ms": _median(r["p50_ms"] for r in rounds),
                "p99_ms": _median(r["p99_ms"] for r in rounds),
                "errors": sum(r["errors"] or 0 for r in rounds),
                # Rounds the server dropped connections in: no figures but texts/s 0.
                "failed_rounds": sum(1 for r in rounds if r.get("failed")),
                "texts_per_s_by_round": [r["texts_per_s"] for r in rounds],
            }
    return summary


def _median(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def ratios(summary: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Each of our contenders' median texts/s over each peer's, and over our fp32 server's
    (the issue's reference for the variants), per concurrency."""
    out: dict[str, dict[str, Any]] = {}
    ours = [name for name in summary if name.startswith("ours-")]
    peers = [name for name in summary if not name.startswith("ours-")]
    for name in ours:
        fp32 = ["ours-fp32"] if "ours-fp32" in summary and name != "ours-fp32" else []
        for peer in [*peers, *fp32]:
            out.setdefault(f"{name} / {peer}", {})
            for level, figures in summary[name].items():
                theirs = summary[peer].get(level, {}).get("texts_per_s")
                if theirs:
                    out[f"{name} / {peer}"][level] = round(figures["texts_per_s"] / theirs, 2)
    return out


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "| contender | concurrency | texts/s (median; rounds) | p50 ms | p99 ms | errors "
        "| rounds with dropped connections |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, levels in report["summary"].items():
        for level, f in levels.items():
            by_round = ", ".join(f"{x:g}" for x in f["texts_per_s_by_round"])
            p50, p99 = (f"{f[k]:g}" if f[k] is not None else "-" for k in ("p50_ms", "p99_ms"))
            lines.append(
                f"| {name} | {level} | {f['texts_per_s']:g} ({by_round}) | {p50} | {p99} "
                f"| {f['errors']} | {f['failed_rounds']} |"
            )
    lines += ["", "| ratio (texts/s) | " + " | ".join(f"c={c}" for c in report["levels"]) + " |"]
    lines.append("| --- |" + " ---: |" * len(report["levels"]))
    for pair, by_level in report["ratios"].items():
        cells = " | ".join(
            f"{by_level[str(c)]}x" if str(c) in by_level else "-" for c in report["levels"]
        )
        lines.append(f"| {pair} | {cells} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="measured time per point")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32, 128])
    parser.add_argument("--model", help="an artifact directory named 'model' (default: built)")
    parser.add_argument(
        "--ours", nargs="*", default=["fp32", "auto"], choices=sorted(OURS_ENV), help="our runs"
    )
    parser.add_argument("--peers", nargs="*", default=list(PEERS), choices=PEERS)
    parser.add_argument("--threads", type=int, default=0, help="SERVE_TORCH_THREADS; 0: default")
    parser.add_argument("--pipeline-threads", type=int, default=0, help="0: all CPUs")
    parser.add_argument("--ts-batch-size", type=int, default=16)
    parser.add_argument("--ts-max-batch-delay-ms", type=int, default=5)
    parser.add_argument("--ts-workers", type=int, default=2)
    parser.add_argument(
        "--ts-job-queue-size",
        type=int,
        default=0,
        help="TorchServe's job_queue_size; 0: its default (100: a 503 and a closed connection "
        "beyond it, which ends that point)",
    )
    parser.add_argument("--venvs", default=str(DEFAULT_VENVS), help="benchmarks/peers/setup.sh DIR")
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "bench_peers"))
    parser.add_argument("--out", help="write the JSON report here")
    args = parser.parse_args(argv)
    if args.model and Path(args.model).name != "model":
        parser.error(f"--model must be a directory named 'model' (got {args.model})")
    report = run(args)
    report["levels"] = args.concurrency
    text = json.dumps(report, indent=1)
    print(text)
    print(markdown(report))
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
