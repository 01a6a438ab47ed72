"""Schedule tests: helpers to make smiths and schedules, and run workers without the scheduler
(tests that fire drive their own ``Scheduler`` with a controlled clock)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.services import agents, smiths
from app.services.actors import Actor
from app.services.background import background
from app.services.runtime import Runtime
from app.services.schedules import ScheduleCreate, create_schedule
from jobs.runner import RunWorkers
from models import Event, Run, Schedule
from tests.conftest import bearer

INPUT = [{"role": "user", "content": "Compose my morning briefing."}]


@pytest.fixture
async def workers(runtime: Runtime) -> AsyncIterator[RunWorkers]:
    async with background(runtime, workers=2, poll_interval_s=0.05, lease_seconds=30, polling=False,
                          scheduler=False) as pool:
        yield pool


@pytest.fixture
async def smith_id(runtime: Runtime, admin: Actor) -> str:
    async with runtime.transaction() as session:
        agent = await agents.create_agent(session, actor=admin, body=agents.AgentCreate(name="Briefer"))
        smith = await smiths.create_smith(session, actor=admin,
                                          body=smiths.SmithCreate(agent_id=agent.id, name="Dana"))
    return smith.id


async def api_smith(api: httpx.AsyncClient, token: str, name: str = "Smith") -> str:
    agent = await api.post("/v1/agents", json={"name": "Agent"}, headers=bearer(token))
    assert agent.status_code == 201, agent.text
    smith = await api.post("/v1/smiths", json={"agent_id": agent.json()["id"], "name": name}, headers=bearer(token))
    assert smith.status_code == 201, smith.text
    return str(smith.json()["id"])


async def new_schedule(runtime: Runtime, actor: Actor, smith_id: str, cron: str, *, now: datetime,
                       timezone: str = "UTC", grace_seconds: int = 3600, enabled: bool = True) -> str:
    async with runtime.transaction() as session:
        schedule = await create_schedule(session, actor=actor, smith_id=smith_id, now=now, body=ScheduleCreate(
            name=f"every {cron}", cron=cron, timezone=timezone, input=INPUT, grace_seconds=grace_seconds,
            enabled=enabled))
    return schedule.id


async def runs_of(runtime: Runtime, schedule_id: str) -> list[Run]:
    async with runtime.sessions() as session:
        stmt = select(Run).where(Run.schedule_id == schedule_id).order_by(Run.scheduled_for)
        return list((await session.execute(stmt)).scalars())


async def events_of(runtime: Runtime, type: str) -> list[Event]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(Event).where(Event.type == type).order_by(Event.id))).scalars())


async def row(runtime: Runtime, schedule_id: str) -> Schedule:
    async with runtime.sessions() as session:
        found = await session.get(Schedule, schedule_id)
        assert found is not None
        return found


def slots(runs: list[Run]) -> list[str]:
    return [r.scheduled_for.strftime("%Y-%m-%d %H:%M") for r in runs if r.scheduled_for]


def meta(run: Run) -> dict[str, Any]:
    return dict(run.run_metadata.get("schedule") or {})
