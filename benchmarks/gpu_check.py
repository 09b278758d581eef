"""One prepared check of a machine with one NVIDIA GPU: training speed, accuracy and serving.

Run it through ``benchmarks/gpu_check.sh`` (which picks the interpreter); it needs nothing from
the network (the offline MiniLM package, DistilBERT's architecture from a config, the
development file ``data/sample`` that travels with the working tree) and prints one JSON
summary on stdout (progress goes to stderr):

- ``training``: samples/s of the project's loop (``training.train.fine_tune``, grouped batches
  with dynamic padding, bf16 autocast) for all-MiniLM-L6-v2 (real weights) and distilbert-base
  (its architecture, random weights) on the development file's headlines, their model FLOPs
  (6 x parameters x tokens) as a share of the GPU's bf16 dense peak (from its name, where
  known) and of a measured bf16 matmul rate;
- ``accuracy``: the real training job (``python -m training``) fine-tuning MiniLM on all
  training rows of the development file at bf16, its test macro-F1 next to the baseline's;
- ``serving``: the real server (``python -m app``, PyTorch bf16 on CUDA) serving that
  artifact at concurrency 1, 32 and 256 (``load_generator``, via ``bench_serving``): texts/s,
  p50/p99, GPU utilisation from ``nvidia-smi``, and the model-only ceiling of the server's own
  ``Classifier`` on length-sorted batches;
- ``versions``: driver, CUDA, torch, GPU name.

``--smoke`` runs every step on a CPU with tiny sizes in seconds, so CI keeps it working.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import bench_serving  # the server measured under load (this script's directory)
import bench_training  # the timed training loop

from devtools.artifacts import minilm_dir, tiny_bert_config
from devtools.data import headlines
from devtools.paths import REPO_ROOT, SAMPLE_DATA
from devtools.processes import offline_env, start_model_server, stop_model_server

# bf16 dense tensor-core peaks from the vendors' data sheets (TFLOP/s, no sparsity).
BF16_PEAK_TFLOPS = {
    "H200": 989.0,
    "H100 SXM": 989.0,
    "H100 NVL": 835.0,
    "H100 PCIe": 756.0,
    "H100": 756.0,  # PCIe unless the name says otherwise
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10G": 70.0,
    "A10": 125.0,
}


def log(message: str) -> None:
    sys.stderr.write(f"[gpu_check {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, any device (for CI)")
    parser.add_argument("--data", type=Path, default=SAMPLE_DATA, help="raw UCI file")
    parser.add_argument("--work", type=Path, default=None, help="scratch directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import torch

    smoke = args.smoke
    if not smoke and not torch.cuda.is_available():
        log("no CUDA device: run with --smoke on a CPU")
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu_check-"))
    started = time.monotonic()
    summary: dict[str, Any] = {"mode": "smoke" if smoke else "full", "versions": versions()}
    try:
        if smoke:  # every 8th row: the same code paths in a fraction of the time
            args.data = thin_out(args.data, work / "development-slice.csv.xz")
        summary["training"] = training_throughput(args.data, smoke)
        summary["accuracy"] = accuracy(args.data, work, smoke)
        summary["serving"] = serving(args.data, work / "base", smoke)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    summary["seconds"] = round(time.monotonic() - started, 1)
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return 0


def thin_out(data: Path, out: Path) -> Path:
    import lzma

    opener = lzma.open if data.suffix == ".xz" else open
    with opener(data, "rb") as handle:
        out.write_bytes(lzma.compress(b"".join(handle.readlines()[::8])))
    return out


def tiny_base_model(out: Path) -> Path:
    """A tiny random BERT with MiniLM's tokenizer, saved as a base model: the smoke run's
    stand-in for MiniLM in the job and the server, where only the code paths matter."""
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    BertForSequenceClassification(tiny_bert_config(tokenizer.vocab_size)).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


# ---------------------------------------------------------------- versions and peak


def versions() -> dict[str, Any]:
    import torch

    found: dict[str, Any] = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "driver": None,
    }
    if shutil.which("nvidia-smi"):
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        found["driver"] = out.stdout.strip().splitlines()[0] if out.stdout.strip() else None
    return found


def spec_peak_tflops(gpu_name: str | None) -> float | None:
    if not gpu_name:
        return None
    for key in sorted(BF16_PEAK_TFLOPS, key=len, reverse=True):  # most specific first
        if key in gpu_name:
            return BF16_PEAK_TFLOPS[key]
    return None


def measured_matmul_tflops(smoke: bool) -> float:
    """bf16 (fp32 on a CPU) square matmuls for about a second: what the chip does in practice."""
    import torch

    cuda = torch.cuda.is_available()
    size = 256 if smoke else 8192
    dtype = torch.bfloat16 if cuda else torch.float32
    device = "cuda" if cuda else "cpu"
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    for _ in range(3):
        a @ b
    if cuda:
        torch.cuda.synchronize()
    count, begun = 0, time.perf_counter()
    while time.perf_counter() - begun < (0.2 if smoke else 1.0):
        for _ in range(10):
            a @ b
        if cuda:
            torch.cuda.synchronize()
        count += 10
    return 2 * size**3 * count / (time.perf_counter() - begun) / 1e12


# ---------------------------------------------------------------- training


def training_throughput(data: Path, smoke: bool) -> dict[str, Any]:
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DistilBertConfig,
        DistilBertForSequenceClassification,
    )
    from transformers.utils import logging as hf_logging

    from training.batching import encode
    from training.data import LABELS, load_datasets
    from training.distributed import DistContext
    from training.hyperparameters import Hyperparameters

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    minilm = minilm_dir()
    splits, _ = load_datasets({"train": data})
    rows = splits.train[: 64 if smoke else len(splits.train)]
    texts, label_ids = [row.text for row in rows], [LABELS.index(row.label) for row in rows]
    tokenizer = AutoTokenizer.from_pretrained(minilm)  # distilbert-base-uncased's vocabulary
    train = encode(texts, label_ids, tokenizer, 128)
    validation = encode(texts[:8], label_ids[:8], tokenizer, 128)
    mean_tokens = sum(train.lengths()) / len(train)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ctx = DistContext(rank=0, local_rank=0, world_size=1, device=device)
    labels = {"num_labels": len(LABELS), "id2label": dict(enumerate(LABELS))}
    distilbert = (
        DistilBertConfig(dim=32, n_layers=1, n_heads=2, hidden_dim=64, **labels)
        if smoke
        else DistilBertConfig(**labels)  # distilbert-base-uncased's shape: 6 x 768, 66M
    )
    peak = spec_peak_tflops(versions()["gpu"])
    matmul = measured_matmul_tflops(smoke)
    results: dict[str, Any] = {
        "rows": len(rows),
        "mean_tokens": round(mean_tokens, 1),
        "bf16_peak_tflops_spec": peak,
        "bf16_matmul_tflops_measured": round(matmul, 2),
    }
    for name in ("all-MiniLM-L6-v2", "distilbert-base (random weights)"):
        torch.manual_seed(0)
        if name.startswith("all-MiniLM"):
            model = AutoModelForSequenceClassification.from_pretrained(minilm, **labels)
        else:
            model = DistilBertForSequenceClassification(distilbert)
        parameters = sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n)
        hp = Hyperparameters(
            model_name_or_path=name,
            max_length=128,
            batch_size=8 if smoke else 64,
            max_steps=2 if smoke else 60,
            precision="auto",  # bf16 on the GPU, fp32 on a CPU
            checkpoint_steps=0,
            early_stopping_patience=0,
            eval_steps=10_000,
            logging_steps=10_000,
        )
        log(f"training throughput: {name}")
        result = bench_training.timed_fine_tune(
            model, train, validation, hp, ctx, tokenizer, "gpu_check"
        )
        rate = result.samples_per_second
        achieved = 6 * parameters * mean_tokens * rate / 1e12
        results[name] = {
            "samples_per_second": round(rate, 1),
            "precision": result.precision,
            "non_embedding_parameters": parameters,
            "model_tflops": round(achieved, 3),
            "share_of_spec_peak": round(achieved / peak, 4) if peak else None,
            "share_of_measured_matmul": round(achieved / matmul, 4) if matmul else None,
        }
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return results


# ---------------------------------------------------------------- accuracy (the real job)


def accuracy(data: Path, work: Path, smoke: bool) -> dict[str, Any]:
    base = work / "base"
    (base / "input" / "data" / "train").mkdir(parents=True, exist_ok=True)
    (base / "input" / "config").mkdir(parents=True, exist_ok=True)
    shutil.copy(data, base / "input" / "data" / "train" / data.name)
    base_model = tiny_base_model(work / "tiny-base") if smoke else minilm_dir()
    hyperparameters = {
        "model_name_or_path": str(base_model),
        "epochs": 2,
        "batch_size": 32,
        "precision": "auto",
        "export_onnx": False,  # the GPU serves PyTorch; the CPU variants are another check
        "eda": False,
    }
    if smoke:
        hyperparameters.update(max_steps=2, max_length=32)
    (base / "input" / "config" / "hyperparameters.json").write_text(
        json.dumps({key: str(value) for key, value in hyperparameters.items()})
    )
    log("accuracy: python -m training on the development file")
    began = time.monotonic()
    job = subprocess.run(
        [sys.executable, "-m", "training"],
        cwd=REPO_ROOT,
        env=offline_env(SAGEMAKER_BASE_DIR=str(base)),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if job.returncode != 0:
        raise RuntimeError(f"the training job failed ({job.returncode}):\n{job.stderr[-4000:]}")
    metadata = json.loads((base / "model" / "artifact.json").read_text())["metadata"]
    metrics = metadata["metrics"]
    return {
        "epochs": 2,
        "train_rows": metadata["rows"]["train"],
        "test_rows": metadata["rows"]["test"],
        "precision": metadata["training"]["precision"],
        "test_macro_f1": metrics["test_macro_f1"],
        "baseline_test_macro_f1": metrics["baseline_test_macro_f1"],
        "job_seconds": round(time.monotonic() - began, 1),
    }


# ---------------------------------------------------------------- serving


class GpuUtilisation:
    """``nvidia-smi`` samples of GPU utilisation (%) while a load runs."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> GpuUtilisation:
        if shutil.which("nvidia-smi"):
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            if out.stdout.strip():
                self.samples.append(float(out.stdout.split()[0]))

    def mean(self) -> float | None:
        return round(sum(self.samples) / len(self.samples), 1) if self.samples else None


def serving(data: Path, base: Path, smoke: bool) -> dict[str, Any]:
    import torch

    cuda = torch.cuda.is_available()
    settings = {"SERVE_DEVICE": "cuda", "SERVE_DTYPE": "bfloat16"} if cuda else {}
    if smoke:  # skip the start-up measurement of the call cost: seconds on a busy CPU
        settings["SERVE_CALL_OVERHEAD_TOKENS"] = "16"
    texts = headlines(data)
    random.Random(0).shuffle(texts)
    seconds = 1.0 if smoke else 15.0
    results: dict[str, Any] = {"device": "cuda" if cuda else "cpu", "levels": {}}
    log("serving: python -m app")
    server = start_model_server(base, base / "server.log", timeout=300, **settings)
    try:
        for concurrency in (1, 32, 256):
            with GpuUtilisation() as utilisation:
                level = bench_serving.drive_server(server, texts, concurrency, seconds)
            level["gpu_utilisation_percent"] = utilisation.mean()
            results["levels"][str(concurrency)] = level
            log(f"serving at concurrency {concurrency}: {level.get('texts_per_s')}")
    finally:
        stop_model_server(server)
    results["model_only_texts_per_second"] = model_only(base / "model", texts, smoke)
    return results


def model_only(model_dir: Path, texts: list[str], smoke: bool) -> dict[str, float]:
    """The server's own ``Classifier`` (same device, dtype, padding) on length-sorted batches
    of headlines, no HTTP: the most the server could answer."""
    import torch

    from app.model import load_classifier
    from app.settings import Settings

    cuda = torch.cuda.is_available()
    settings = Settings(
        base_dir=model_dir.parent,
        device="cuda" if cuda else "cpu",
        dtype="bfloat16" if cuda else "float32",
        runtime="torch",
    )
    classifier = load_classifier(settings)
    ids = sorted(classifier.tokenize(texts), key=len)
    rates: dict[str, float] = {}
    for size in (8,) if smoke else (64, 256):
        batches = [ids[i : i + size] for i in range(0, len(ids), size)]
        random.Random(0).shuffle(batches)
        done, began = 0, time.perf_counter()
        for batch in batches:
            classifier.predict(batch)  # returns host floats: includes the copy back
            done += len(batch)
            if time.perf_counter() - began > (1 if smoke else 8):
                break
        rates[str(size)] = round(done / (time.perf_counter() - began), 1)
    return rates


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
