"""Batch Transform at the issue's sizes: the real model server, the payloads SageMaker sends.

    .venv/bin/python benchmarks/bench_transform.py --out /tmp/transform.json
    .venv/bin/python benchmarks/bench_transform.py --model minilm --lines 100000

Starts ``python -m app`` with the environment a transform job sets (``SAGEMAKER_BATCH``,
``SAGEMAKER_BATCH_STRATEGY``, ``SAGEMAKER_MAX_PAYLOAD_IN_MB``,
``SAGEMAKER_MAX_CONCURRENT_TRANSFORMS``), splits a file of headlines into payloads as the job
would (devtools/batch_transform.py), posts them, and checks that every line came back, in
order (against JSON requests of 200 headlines). Cases: ``--lines`` headlines as JSON Lines,
MultiRecord, ``--payload-mb`` MB payloads, ``--rounds`` times; the same as CSV; ``--single``
headlines as SingleRecord, 4 at once. For each: lines/s, requests, and the server's RSS
before, at its peak and after (MiB; sampled every 20 ms).

``--model tiny`` (default) is a 2-layer BERT: the figures are the server's own cost per line
(decoding, chunking, queueing, encoding), which is what a 6 MB body stresses;
``--model minilm`` is the pretrained MiniLM with its ONNX export, as served in production.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from bench_abuse import RssSampler

from devtools.artifacts import build_minilm_artifact
from devtools.batch_transform import MIB, transform
from devtools.data import headlines
from devtools.processes import ServerProcess, start_model_server, stop_model_server

REFERENCE_BATCH = 200


JEMALLOC = Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")


def start(base: Path, log: Path, **env: str) -> ServerProcess:
    if JEMALLOC.is_file():  # what the serving images preload (SERVE_ALLOCATOR)
        env["LD_PRELOAD"] = str(JEMALLOC)
    return start_model_server(base, log, timeout=300, **env)


Best = tuple[str, float]


def reference(url: str, texts: list[str]) -> list[Best]:
    """Each text's best label and score from small JSON requests."""
    best: list[Best] = []
    with httpx.Client(base_url=url, timeout=600) as client:
        for start_at in range(0, len(texts), REFERENCE_BATCH):
            batch = texts[start_at : start_at + REFERENCE_BATCH]
            response = client.post("/invocations", json={"inputs": batch})
            response.raise_for_status()
            best.extend((item["label"], item["score"]) for item in response.json())
    return best


def case(
    name: str,
    server: ServerProcess,
    lines: list[bytes],
    expected: list[Best],
    parse: Any,
    **options: Any,
) -> dict[str, Any]:
    rss = RssSampler(server.process.pid)
    before = rss.reset()
    started = time.perf_counter()
    out, requests = transform(server.url, lines, **options)
    seconds = time.perf_counter() - started
    time.sleep(0.5)
    after = rss.now()
    rss.stop()
    got = [parse(line) for line in out]
    # Batches of other sizes may move a score in its last float digits, never by 1e-3.
    misplaced = sum(
        a[0] != b[0] or abs(a[1] - b[1]) > 1e-3 for a, b in zip(got, expected, strict=False)
    )
    result = {
        "case": name,
        "lines": len(lines),
        "requests": requests,
        "seconds": round(seconds, 2),
        "lines_per_s": round(len(lines) / seconds, 1),
        "all_lines_in_order": len(out) == len(lines) and misplaced == 0,
        "misplaced": misplaced,
        "rss_before_mib": round(before, 1),
        "rss_peak_mib": round(rss.peak(), 1),
        "rss_after_mib": round(after, 1),
    }
    print(json.dumps(result), flush=True)
    return result


def from_jsonlines(line: bytes) -> Best:
    item = json.loads(line)
    return item["label"], item["score"]


def from_csv(line: bytes) -> Best:
    label, score = line.decode().split(",")[:2]
    return label, float(score)


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-transform-"))
    if args.model == "minilm":
        model_dir = build_minilm_artifact(work / "opt_ml" / "model")
    else:
        from devtools.artifacts import build_tiny_artifact

        model_dir = work / "opt_ml" / "model"
        if not (model_dir / "artifact.json").is_file():
            build_tiny_artifact(model_dir, initializer_range=0.5)
    pool = headlines()
    texts = [pool[i % len(pool)] for i in range(args.lines)]
    report: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "model": args.model,
        "payload_mb": args.payload_mb,
        "allocator": "jemalloc" if JEMALLOC.is_file() else "glibc",
        "cases": [],
    }
    multi = {
        "SAGEMAKER_BATCH": "true",
        "SAGEMAKER_BATCH_STRATEGY": "MULTI_RECORD",
        "SAGEMAKER_MAX_PAYLOAD_IN_MB": str(args.payload_mb),
        "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "1",
    }
    server = start(model_dir.parent, work / "multi.log", **multi)
    try:
        report["limits"] = _limits(work / "multi.log")
        expected = reference(server.url, texts)
        payload = args.payload_mb * MIB
        jsonl = [json.dumps({"inputs": text}).encode() for text in texts]
        for round_ in range(1, args.rounds + 1):
            report["cases"].append(
                case(
                    f"multi_record_jsonlines_{round_}",
                    server,
                    jsonl,
                    expected,
                    from_jsonlines,
                    content_type="application/jsonlines",
                    accept="application/jsonlines",
                    max_payload_bytes=payload,
                )
            )
        rows = [
            ('"' + t.replace('"', '""') + '"' if "," in t or '"' in t else t).encode()
            for t in texts
        ]
        report["cases"].append(
            case(
                "multi_record_csv",
                server,
                rows,
                expected,
                from_csv,
                content_type="text/csv",
                accept="text/csv",
                max_payload_bytes=payload,
            )
        )
    finally:
        stop_model_server(server)
    single = {**multi, "SAGEMAKER_BATCH_STRATEGY": "SINGLE_RECORD"}
    single["SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"] = "4"
    server = start(model_dir.parent, work / "single.log", **single)
    try:
        few = texts[: args.single]
        report["cases"].append(
            case(
                "single_record_jsonlines",
                server,
                [json.dumps(text).encode() for text in few],
                expected[: args.single],
                from_jsonlines,
                content_type="application/jsonlines",
                accept="application/jsonlines",
                max_payload_bytes=args.payload_mb * MIB,
                multi_record=False,
                concurrent=4,
            )
        )
    finally:
        stop_model_server(server)
    return report


def _limits(log: Path) -> dict[str, Any]:
    for line in log.read_text().splitlines():
        if '"serving limits"' in line:
            entry = json.loads(line)
            return {key: entry.get(key) for key in ("queue_size", "max_instances")}
    return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("tiny", "minilm"), default="tiny")
    parser.add_argument("--lines", type=int, default=100_000, help="MultiRecord headlines")
    parser.add_argument("--single", type=int, default=5_000, help="SingleRecord headlines")
    parser.add_argument(
        "--rounds", type=int, default=3, help="JSON Lines runs, to see the RSS stay flat"
    )
    parser.add_argument("--payload-mb", type=int, default=6, help="MaxPayloadInMB")
    parser.add_argument("--work", help="Folder for the artifact and logs (default: a temp dir)")
    parser.add_argument("--out", help="Write the report (JSON) here")
    args = parser.parse_args(argv)
    report = run(args)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    ok = all(item["all_lines_in_order"] for item in report["cases"])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
