"""Start-up is safe when several processes start at once: one schema, one project, one token."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import create_postgres_database

ROOT = Path(__file__).resolve().parent.parent


def _start_many(url: str, data_dir: Path, count: int = 4) -> list[subprocess.CompletedProcess[str]]:
    env = {**os.environ, "IC_DATABASE_URL": url, "IC_DATA_DIR": str(data_dir),
           "IC_ADMIN_TOKEN": "ic_admin_bootstrap-test-token", "IC_ADMIN_PASSWORD": ""}
    procs = [subprocess.Popen([sys.executable, "-m", "app.bootstrap"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(count)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results


def _counts(sync_url: str) -> tuple[int, int, int, int]:
    engine = create_engine(sync_url)
    with engine.connect() as conn:
        row = (
            conn.execute(text("SELECT count(*) FROM project")).scalar_one(),
            conn.execute(text("SELECT count(*) FROM api_token")).scalar_one(),
            conn.execute(text("SELECT count(*) FROM console_account")).scalar_one(),
            conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one(),
        )
    engine.dispose()
    return row


def _check(results: list[subprocess.CompletedProcess[str]], sync_url: str) -> None:
    for result in results:
        assert result.returncode == 0, result.stderr
    assert _counts(sync_url) == (1, 1, 1, 1)
    links = sum("Console setup link" in r.stderr for r in results)
    assert links == 1  # exactly one process printed the one-time link


def test_concurrent_start_on_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "ingram.db"
    _check(_start_many(f"sqlite+aiosqlite:///{db}", tmp_path), f"sqlite:///{db}")
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600


@pytest.mark.timeout(180)
def test_concurrent_start_on_postgres(tmp_path: Path) -> None:
    url, drop = create_postgres_database("ic_boot")
    try:
        _check(_start_many(url, tmp_path), url)
    finally:
        drop()
