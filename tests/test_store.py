"""The store (models/store/) is the only place prebuilt statements live (issue 19, item 5)."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

from models import Run
from models.store.runs import RunState

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("models", "channels", "jobs", "app")


def _product_files() -> list[Path]:
    files = [p for d in PRODUCT for p in (ROOT / d).rglob("*.py") if "migrations" not in p.parts]
    assert len(files) > 100  # the walk really saw the tree
    return files


def _imported_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_only_the_store_runs_prebuilt_statements() -> None:
    store = ROOT / "models" / "store"
    outside = [str(p.relative_to(ROOT)) for p in _product_files()
               if store not in p.parents and "models.store.hot" in _imported_names(p)]
    assert outside == []


def test_no_caller_flushes_by_hand() -> None:
    hot = ROOT / "models" / "store" / "hot.py"
    callers = [str(p.relative_to(ROOT)) for p in _product_files()
               if p != hot and "flush_pending" in p.read_text()]
    assert callers == []


def test_a_run_state_reads_a_run_row_in_column_order() -> None:
    assert [f.name for f in dataclasses.fields(RunState)] == [c.key for c in Run.__table__.columns]
