"""Where things are in a checkout: the repository root and the development data files."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DATA = REPO_ROOT / "data" / "sample" / "newsCorpora.sample.csv.xz"
# The full UCI file sits beside the checkout on development machines, never in the repository.
FULL_DATA = REPO_ROOT.parent / "shared" / "data" / "newsCorpora.csv.xz"
