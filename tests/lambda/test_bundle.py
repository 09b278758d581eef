"""The Lambda bundle is lambda/ as it is: its modules may import only the standard library,
boto3/botocore (which the Python runtime provides) and each other."""

from __future__ import annotations

import ast
import sys

from devtools.paths import REPO_ROOT

LAMBDA_DIR = REPO_ROOT / "lambda"
RUNTIME_PROVIDED = {"boto3", "botocore"}


def _runtime_imports(tree: ast.Module) -> set[str]:
    """Top-level module names imported outside ``if TYPE_CHECKING:`` blocks."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.Import):
                names.update(alias.name.split(".")[0] for alias in inner.names)
            elif isinstance(inner, ast.ImportFrom) and inner.module and not inner.level:
                names.add(inner.module.split(".")[0])
    return names


def test_lambda_modules_need_nothing_the_runtime_lacks() -> None:
    local = {path.stem for path in LAMBDA_DIR.glob("*.py")}
    assert "handler" in local
    for path in LAMBDA_DIR.glob("*.py"):
        imported = _runtime_imports(ast.parse(path.read_text(), str(path)))
        foreign = imported - local - RUNTIME_PROVIDED - set(sys.stdlib_module_names)
        assert not foreign, f"{path.name} imports {sorted(foreign)}"
