#!/usr/bin/env bash
# One prepared check of a machine with one NVIDIA GPU and no network, in at most 6 minutes:
# training samples/s and share of the bf16 peak (MiniLM, distilbert-base), MiniLM's test
# macro-F1 after 2 epochs on the development file next to the baseline's, the real server on
# CUDA bf16 at concurrency 1, 32, 256, and the driver/CUDA/torch versions. Prints one JSON
# summary on stdout (progress on stderr); see benchmarks/gpu_check.py.
#
#   benchmarks/gpu_check.sh            # on the GPU machine, from the repository root
#   benchmarks/gpu_check.sh --smoke    # any machine, tiny sizes, seconds (CI runs this)
#
# The interpreter: $PYTHON, else the project's .venv, else python3 (a machine that already
# has torch, transformers and the project's dependencies: nothing is installed here).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -n "${PYTHON:-}" ]]; then
    python="$PYTHON"
elif [[ -x .venv/bin/python ]]; then
    python=.venv/bin/python
else
    python=python3
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# The whole check is bounded: 6 minutes on a GPU; the smoke run is far quicker.
exec timeout --kill-after=10 360 "$python" benchmarks/gpu_check.py "$@"
