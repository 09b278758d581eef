"""Model-only speed of each ONNX variant (fp32, optimized, int8) on the serving benchmark's
MiniLM artifact, alternated in rounds in one process, with the server's thread setting.

    .venv/bin/python benchmarks/bench_variants.py [--rounds 2] [--threads 1]

Builds (once) the artifact of ``devtools.artifacts.build_minilm_artifact`` with ``model.onnx`` and
its unchecked variants (a fresh head has no test split), prints their sizes, then texts/s of
``ceilings.model_only`` (length-sorted batches of 1 and 32 through the server's
``OnnxScorer``) per variant per round. Accuracy per variant: ``compare_runtimes.py`` on a
trained artifact.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from ceilings import model_only

from devtools.artifacts import build_minilm_artifact
from devtools.data import headlines
from model_artifact import ONNX_VARIANT_FILES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="the server's default on 2 CPUs")
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "bench_variants"))
    args = parser.parse_args(argv)
    model_dir = build_minilm_artifact(Path(args.work) / "opt_ml" / "model")
    sizes = {
        name: round((model_dir / file).stat().st_size / 2**20, 1)
        for name, file in ONNX_VARIANT_FILES.items()
    }
    print(json.dumps({"mib": sizes, "load_average": os.getloadavg()}), flush=True)
    texts = headlines()
    for round_ in range(args.rounds):
        for variant in ONNX_VARIANT_FILES:
            rates = model_only(model_dir, texts, (1, 32), args.threads, "onnx", variant)
            print(json.dumps({"round": round_, "variant": variant, "texts_per_s": rates}))
    print(json.dumps({"load_average": os.getloadavg()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
