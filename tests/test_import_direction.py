"""Imports point one way: models <- channels <- jobs <- app.services <- {app.api, app.state}.

``app.settings`` and ``app.crypto`` are the foundation every layer may use.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOUNDATION = {"app.settings", "app.crypto"}
LAYERS = ["models", "channels", "jobs", "app.services", "app.api", "app.state", "app.pages",
          "app.components", "app.bootstrap", "app.app"]
RANK = {"models": 0, "channels": 1, "jobs": 2, "app.services": 3, "app.bootstrap": 4,
        "app.api": 4, "app.state": 4, "app.components": 5, "app.pages": 5, "app.app": 6}
# Console layers may not reach into the HTTP layer and vice versa (both sit on services).
FORBIDDEN_PAIRS = {("app.api", "app.state"), ("app.state", "app.api"), ("app.api", "app.pages")}


def _layer(module: str) -> str | None:
    if module in FOUNDATION or any(module.startswith(f + ".") for f in FOUNDATION):
        return None
    for layer in sorted(LAYERS, key=len, reverse=True):
        if module == layer or module.startswith(layer + "."):
            return layer
    return None


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def test_imports_point_one_way() -> None:
    wrong = []
    files = [p for d in ("models", "channels", "jobs", "app") for p in (ROOT / d).rglob("*.py")
             if "migrations" not in p.parts]
    assert len(files) > 20  # the walk really saw the tree
    for path in files:
        source = _layer(_module_name(path))
        if source is None:
            continue
        for imported in _imports(path):
            target = _layer(imported)
            if target is None or target == source:
                continue
            if RANK[target] > RANK[source] or (source, target) in FORBIDDEN_PAIRS:
                wrong.append(f"{path.relative_to(ROOT)} imports {imported} ({source} -> {target})")
    assert wrong == []


def test_foundation_modules_import_no_layer() -> None:
    for name in FOUNDATION:
        path = ROOT / (name.replace(".", "/") + ".py")
        layers = {_layer(m) for m in _imports(path)} - {None}
        assert layers == set(), f"{name} imports {layers}"


def test_a_wrong_way_import_is_detected(tmp_path: Path) -> None:
    """The check can fail: a models module importing app.services is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("from app.services import agents\n")
    assert _layer(_imports(bad)[0]) == "app.services"
    assert RANK["app.services"] > RANK["models"]
