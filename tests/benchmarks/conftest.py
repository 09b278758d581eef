"""The benchmark scripts import their siblings by name (``from compare_models import ...``), as
``python benchmarks/X.py`` puts the script's folder first on sys.path; tests that import them
as ``benchmarks.X`` need that folder on the path too."""

from __future__ import annotations

import sys

from devtools.paths import REPO_ROOT

_BENCHMARKS = str(REPO_ROOT / "benchmarks")
if _BENCHMARKS not in sys.path:
    sys.path.append(_BENCHMARKS)
