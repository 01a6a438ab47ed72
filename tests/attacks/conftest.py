"""The server the attack corpora are fired at: the real product (``./run.sh``, as the integration
tests start it) on SQLite, and on PostgreSQL + Redis with two granian workers, with a local fake of
every provider it talks to, so that a request that wrongly got through would leave a row and an
outbound call to count."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlmodel import SQLModel

import models  # noqa: F401 - registers every table in SQLModel.metadata
from tests.conftest import create_postgres_database
from tests.fakes.cloudflare import FakeCloudflare, serve_fake_cloudflare
from tests.fakes.linkedin import FakeLinkedIn, serve_fake_linkedin
from tests.fakes.slack import FakeSlack, serve_fake_slack
from tests.fakes.telegram import FakeTelegram, serve_fake_telegram
from tests.fakes.whatsapp import FakeGraph, serve_fake_graph
from tests.integration.conftest import Server, start_server, stop_server

PUBLIC_URL = "https://bots.example.com"  # public HTTPS: Telegram and Slack are set up as webhooks, not pulled


@dataclass
class AttackServer:
    database: str  # sqlite | postgres+redis
    server: Server
    engine: Engine  # read-only use: counting rows
    telegram: FakeTelegram
    slack: FakeSlack
    graph: FakeGraph
    cloudflare: FakeCloudflare
    linkedin: FakeLinkedIn
    host: str = field(init=False)
    port: int = field(init=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.server.url)
        self.host, self.port = str(parts.hostname), int(parts.port or 80)

    @property
    def url(self) -> str:
        return self.server.url

    def rows(self) -> dict[str, int]:
        """Rows in every table of the product: a refused request must leave all of them as they were."""
        with self.engine.connect() as connection:
            return {table.name: int(connection.execute(text(f'SELECT count(*) FROM "{table.name}"')).scalar_one())
                    for table in SQLModel.metadata.sorted_tables}

    def outbound(self) -> dict[str, int]:
        """Calls every fake provider received (sends, lookups, read marks, response_urls)."""
        return {"telegram": len(self.telegram.calls), "slack": len(self.slack.calls) + len(self.slack.responded),
                "whatsapp": len(self.graph.calls), "email": len(self.cloudflare.requests),
                "linkedin": len(self.linkedin.calls) + len(self.linkedin.token_calls)}


@pytest.fixture(scope="session")
def attack_fakes() -> Iterator[tuple[FakeTelegram, FakeSlack, FakeGraph, FakeCloudflare, FakeLinkedIn]]:
    with (serve_fake_telegram() as telegram, serve_fake_slack() as slack, serve_fake_graph() as graph,
          serve_fake_cloudflare() as cloudflare, serve_fake_linkedin() as linkedin):
        yield telegram, slack, graph, cloudflare, linkedin


@pytest.fixture(scope="session", params=["sqlite", "postgres+redis"])
def attack_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                  attack_fakes: tuple[FakeTelegram, FakeSlack, FakeGraph, FakeCloudflare, FakeLinkedIn]
                  ) -> Iterator[AttackServer]:
    telegram, slack, graph, cloudflare, linkedin = attack_fakes
    tmp = tmp_path_factory.mktemp("attack-server")
    env = {"IC_TELEGRAM_API_URL": telegram.url, "IC_SLACK_API_URL": slack.api_url,
           "IC_SLACK_OAUTH_URL": slack.authorize_url, "IC_GRAPH_API_URL": graph.url,
           "IC_CLOUDFLARE_API_URL": cloudflare.api_url, "IC_LINKEDIN_API_URL": linkedin.url,
           "IC_PUBLIC_URL": PUBLIC_URL,
           # Hundreds of refusals come from one address on purpose: the per-client throttle (429 after
           # IC_REFUSAL_LIMIT, tests/api/test_limits.py) would otherwise answer most of them. It still
           # counts every refusal; it just never trips.
           "IC_REFUSAL_LIMIT": "1000000"}
    drop = None
    if request.param == "sqlite":
        database_url = f"sqlite:///{tmp / 'data' / 'ingram.db'}"
    else:
        database_url, drop = create_postgres_database("ic_attacks")
        env.update({"IC_DATABASE_URL": database_url, "GRANIAN_WORKERS": "2",
                    "REFLEX_REDIS_URL": os.environ.get("IC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")})
    running = start_server(Path(tmp), env)
    engine = create_engine(database_url)
    try:
        yield AttackServer(request.param, running, engine, telegram, slack, graph, cloudflare, linkedin)
    finally:
        engine.dispose()
        stop_server(running)
        if drop:
            drop()
