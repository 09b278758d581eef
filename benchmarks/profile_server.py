"""Where the model server's CPU time goes under load: py-spy samples of every thread, by kind.

    .venv/bin/python benchmarks/profile_server.py --variant int8 --concurrency 32 \
        --py-spy /tmp/pyspy/bin/py-spy

Starts ``python -m app`` on the serving benchmark's artifact (``bench_serving.prepare``),
drives it with ``load_generator.run_load`` and meanwhile samples the server with py-spy
(``pip install py-spy``; ``--nonblocking``, so the server is never paused). Each sample of a
running thread is put in the first kind whose marker appears in its stack, innermost frame
first: the model call, tokenizing, HTTP parsing and writing (uvicorn's protocol, h11 or
httptools), JSON, logging, handing work between threads (queues, futures), our request
handling (``app/``), the framework (starlette, FastAPI, anyio), the event loop itself, and
the rest. The report gives each kind in cores (samples / rate /
seconds: 1.0 is one core all along) per thread kind (model, tokenize, event loop).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench_serving import add_server_options, emit, extra_settings, prepare, variant_settings
from load_generator import run_load

from devtools.data import headlines
from devtools.processes import start_model_server

# (kind, markers): the first kind with a marker in a frame wins, innermost frame first.
KINDS = (
    ("model", ("app/model.py", "onnxruntime", "torch/")),
    ("tokenize", ("tokenization_utils", "tokenizers", "tokenize (app/")),
    ("http", ("uvicorn/protocols", "h11", "httptools")),
    ("json", ("json/", "orjson", "app/codecs.py")),
    ("logging", ("logging/", "app/observability.py")),
    ("app", ("app/",)),
    ("thread hand-offs", ("queue.py", "threading.py", "concurrent/futures", "to_thread.py")),
    ("framework", ("starlette", "fastapi", "pydantic", "anyio")),
    ("event loop", ("asyncio/", "selectors.py", "uvloop")),
)


def kind_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for kind, markers in KINDS:
            if any(marker in frame for marker in markers):
                return kind
    return "other"


def thread_kind(frames: list[str]) -> str:
    """Which of the server's threads a stack is on, from its outermost frames."""
    stack = ";".join(frames)
    if "_run_on_model_thread" in stack:
        return "model thread"
    if "tokenize" in stack and "concurrent/futures/thread.py" in stack:
        return "tokenizer thread"
    if "WorkerThread.run" in stack:
        return "anyio worker thread"  # FastAPI runs sync dependencies and endpoints there
    if "uvicorn" in stack or "asyncio" in stack:
        return "event loop"
    return "other"


def aggregate(raw: str, rate: int, seconds: float) -> dict[str, Any]:
    by_thread: dict[str, Counter[str]] = {}
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        thread = thread_kind(frames)
        by_thread.setdefault(thread, Counter())[kind_of(frames)] += int(count)
    per_sample = 1 / (rate * seconds)
    return {
        thread: {
            "cores": round(sum(kinds.values()) * per_sample, 3),
            "by_kind_cores": {k: round(n * per_sample, 3) for k, n in kinds.most_common()},
        }
        for thread, kinds in sorted(by_thread.items())
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="auto", metavar="VARIANT[:NAME=VALUE,...]")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--py-spy", default="py-spy", help="the py-spy executable")
    add_server_options(parser)
    args = parser.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    base, _ = prepare(args)
    settings = {**variant_settings(args.variant), **extra_settings(args)}
    server = start_model_server(base, work / "profile.log", timeout=300, **settings)
    texts = headlines()
    raw_path = work / "profile.folded"
    result: dict[str, Any] = {}
    try:
        load = threading.Thread(
            target=lambda: result.update(
                run_load(
                    server.url, texts, concurrency=args.concurrency, seconds=args.seconds + 2
                ).as_dict()
            )
        )
        load.start()
        time.sleep(min(3.0, (args.seconds + 2) / 4) + 1)  # past the warm-up
        subprocess.run(
            [args.py_spy, "record", "--pid", str(server.process.pid), "--rate", str(args.rate),
             "--duration", str(int(args.seconds)), "--nonblocking", "--format", "raw",
             "--output", str(raw_path)],
            check=True, capture_output=True, timeout=args.seconds + 60,
        )  # fmt: skip
        load.join()
    finally:
        server.stop()
    report = {
        "variant": args.variant,
        "settings": settings,
        "load": result,
        "threads": aggregate(raw_path.read_text(), args.rate, int(args.seconds)),
    }
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
