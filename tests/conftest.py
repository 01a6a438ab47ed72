"""Fixtures: a migrated database on SQLite and on PostgreSQL, the runtime, an admin actor and an
HTTP client for the /v1 app.

Every database test runs twice, once per backend (``db`` is parametrized). PostgreSQL comes from
IC_TEST_POSTGRES_URL (./test.sh sets it); each test session migrates its own fresh database.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from app.api import build_api
from app.services import projects, tokens
from app.services.actors import Actor
from app.services.runtime import Runtime, set_runtime
from app.settings import Settings
from models.db import migrate
from models.inline_sqlite import WATCHDOG

BACKENDS = ["sqlite", "postgres"]

# A transaction holding the SQLite writer longer than this fails the test (no_long_transactions):
# generous, because this machine is slow and shared; production logs at 2 s.
os.environ.setdefault("IC_TX_WATCHDOG_STRICT", "1")
os.environ.setdefault("IC_TX_WATCHDOG_SECONDS", "5")


@pytest.fixture(autouse=True)
def no_long_transactions() -> Iterator[None]:
    """No network call (or other long wait) inside a transaction: the writer's watchdog records any
    transaction held longer than IC_TX_WATCHDOG_SECONDS, and the test fails."""
    configured = Settings.from_env()
    WATCHDOG.configure(configured.tx_watchdog_seconds, configured.tx_watchdog_strict)
    WATCHDOG.take()
    yield
    held = WATCHDOG.take()
    assert not held, f"transactions held the SQLite writer too long (a provider call inside?): {held}"


def _postgres_admin_url() -> str:
    return os.environ.get(
        "IC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("sqlite-template")
    migrate(f"sqlite+aiosqlite:///{directory / 'template.db'}", directory)
    return directory / "template.db"


def create_postgres_database(prefix: str) -> tuple[str, Callable[[], None]]:
    """A new, empty PostgreSQL database: its URL and a function that drops it."""
    admin_url = make_url(_postgres_admin_url())
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - environment problem, said clearly
        admin.dispose()
        pytest.fail(f"PostgreSQL is required for the postgres tests ({admin_url!r}): {exc}")

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return admin_url.set(database=name).render_as_string(hide_password=False), drop


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database for this test session, migrated once, dropped at the end."""
    url, drop = create_postgres_database("ic_test")
    migrate(url, Path("/tmp"))
    yield url
    drop()


def _truncate_postgres(url: str) -> None:
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} CASCADE"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database URL (one per test)."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copy(template, tmp_path / "ingram.db")
        yield f"sqlite+aiosqlite:///{tmp_path / 'ingram.db'}"
        return
    url: str = request.getfixturevalue("postgres_url")
    yield url
    _truncate_postgres(url)


@pytest.fixture
def settings(db: str, tmp_path: Path) -> Settings:
    base = Settings.from_env()
    # allow_private_urls: the fake model servers listen on 127.0.0.1 over http (jobs/egress.py);
    # tests of the refusal build their settings with it off.
    # Providers nobody started answer "connection refused" at once: a test never reaches the real one.
    nowhere = "http://127.0.0.1:9"
    return dataclasses.replace(base, data_dir=tmp_path, database_url=db, secret_keys=("test-key",),
                               admin_token="", admin_password="", allow_private_urls=True,
                               telegram_api_url=nowhere, slack_api_url=f"{nowhere}/api/",
                               slack_oauth_url=f"{nowhere}/oauth/v2/authorize", graph_api_url=nowhere,
                               cloudflare_api_url=nowhere, linkedin_api_url=nowhere)


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    rt = Runtime.build(settings)
    set_runtime(rt)
    yield rt
    set_runtime(None)
    await rt.close()


@pytest.fixture
async def admin(runtime: Runtime) -> Actor:
    async with runtime.transaction() as session:
        project = await projects.ensure_default_project(session)
    return Actor(project_id=project.id, kind="admin", subject="tests")


@pytest.fixture
async def admin_token(runtime: Runtime, admin: Actor) -> str:
    async with runtime.transaction() as session:
        minted = await tokens.create_admin_token(
            session, actor=admin, body=tokens.TokenCreate(subject="tests")
        )
    return minted.token


@pytest.fixture
async def api(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The /v1 app in-process (no network): for fast API tests. Integration tests use HTTP."""
    transport = httpx.ASGITransport(app=build_api())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "IC-Api-Version": "2026-05-01"}
