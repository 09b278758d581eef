"""The serving benchmarks' floor: a ``transformers`` pipeline call per request, one at a time.

What the default Hugging Face SageMaker container does, behind the same uvicorn as our server:

    .venv/bin/python benchmarks/baseline_server.py MODEL_DIR PORT THREADS
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from devtools.processes import ServerProcess, free_port, offline_env, start_server


def start_baseline(model_dir: Path, log: Path, threads: int) -> ServerProcess:
    """This script as a server process on a free port, ready (``/ping`` 200)."""
    port = free_port()
    args = [sys.executable, __file__, str(model_dir), str(port), str(threads)]
    return start_server(args, log, port, env=offline_env(), timeout=300)


def serve_baseline(model_dir: Path, port: int, threads: int) -> None:
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


def main(argv: list[str] | None = None) -> int:
    model_dir, port, threads = argv if argv is not None else sys.argv[1:]
    serve_baseline(Path(model_dir), int(port), int(threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
