#!/usr/bin/env bash
# Create the peer servers' virtual environments for benchmarks/bench_peers.py, outside the
# repository, each from its lock file (every package pinned):
#
#   benchmarks/peers/setup.sh [DIR]     (default: ~/.cache/news-classifier/peers)
#
#   DIR/hf-toolkit   the Hugging Face SageMaker inference toolkit (multi-model-server),
#                    transformers 4.x and setuptools<81, as its inference container has them
#   DIR/torchserve   TorchServe and torch-model-archiver
#
# Both need Java 11+ on PATH to serve (`java -version`). A venv whose lock file has not
# changed since it was installed is kept as it is; delete DIR to start over.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${1:-${HOME}/.cache/news-classifier/peers}"
python="${PYTHON:-python3.11}"

if ! command -v java >/dev/null; then
    echo "setup.sh: no java on PATH; TorchServe and multi-model-server need Java 11+" >&2
    exit 1
fi
mkdir -p "$dir"
for name in hf-toolkit torchserve; do
    lock="$here/$name.lock.txt"
    venv="$dir/$name"
    stamp="$venv/.installed"
    if [[ -f "$stamp" ]] && cmp -s "$lock" "$stamp"; then
        echo "$venv: up to date"
        continue
    fi
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$lock"
    cp "$lock" "$stamp"
    echo "$venv: installed from $(basename "$lock")"
done
