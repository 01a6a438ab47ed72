from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Request
from sse_starlette.sse import EventSourceResponse

from app.api.deps import CurrentActor, Session
from app.api.v1.common import Cursor, Limit, ListResponse
from app.services import events, runs
from app.services.events import EventView
from app.services.runs import Decision, RunCreate, RunEventView, RunView
from app.services.runtime import get_runtime
from jobs.runner import wake_workers
from models.types import id_floor, utcnow

router = APIRouter(tags=["runs"])
STREAM_POLL_S = 0.25
STREAM_LOOKBACK = timedelta(seconds=10)


async def _view(session: Session, run_id: str, actor: CurrentActor) -> RunView:
    run = await runs.get_run(session, actor=actor, run_id=run_id)
    return RunView.of(run, await runs.pending_approval(session, run), admin=actor.is_admin)


@router.post("/smiths/{smith_id}/runs", status_code=202, response_model=RunView)
async def create_run(smith_id: str, body: RunCreate, actor: CurrentActor, session: Session,
                     background: BackgroundTasks) -> RunView:
    """Queue a run of the smith on `input`. Poll `GET /v1/runs/{id}` or stream its events."""
    run = await runs.create_run(session, actor=actor, smith_id=smith_id, body=body)
    background.add_task(wake_workers)  # after the commit, so a worker finds the run
    return RunView.of(run)


@router.get("/runs", response_model=ListResponse[RunView])
async def list_runs(actor: CurrentActor, session: Session, limit: Limit = 50, cursor: Cursor = None,
                    smith_id: str | None = Query(default=None, max_length=40),
                    status: str | None = Query(default=None, pattern="^(" + "|".join(runs.STATUSES) + ")$"),
                    source: str | None = Query(default=None, pattern="^(" + "|".join(runs.SOURCES) + ")$"),
                    ) -> ListResponse[RunView]:
    page = await runs.list_runs(session, actor=actor, smith_id=smith_id, status=status, source=source,
                                limit=limit, cursor=cursor)
    return ListResponse(data=[RunView.of(r, admin=actor.is_admin) for r in page.items], next_cursor=page.next_cursor)


@router.get("/runs/{run_id}", response_model=RunView)
async def get_run(run_id: str, actor: CurrentActor, session: Session) -> RunView:
    return await _view(session, run_id, actor)


@router.get("/runs/{run_id}/events", response_model=ListResponse[RunEventView])
async def run_events(run_id: str, actor: CurrentActor, session: Session,
                     after: Annotated[int, Query(ge=0)] = 0) -> ListResponse[RunEventView]:
    found = await runs.list_run_events(session, actor=actor, run_id=run_id, after_seq=after)
    return ListResponse(data=[RunEventView.of(e) for e in found])


@router.post("/runs/{run_id}/cancel", response_model=RunView)
async def cancel_run(run_id: str, actor: CurrentActor, session: Session) -> RunView:
    return RunView.of(await runs.cancel_run(session, actor=actor, run_id=run_id), admin=actor.is_admin)


@router.post("/runs/{run_id}/submit", response_model=RunView)
async def submit(run_id: str, body: Decision, actor: CurrentActor, session: Session,
                 background: BackgroundTasks) -> RunView:
    """Approve, reject or edit the tool call a paused run waits on (APR-1)."""
    run = await runs.submit_decision(session, actor=actor, run_id=run_id, decision=body)
    background.add_task(wake_workers)
    return RunView.of(run)


@router.get("/runs/{run_id}/stream", response_class=EventSourceResponse)
async def stream_run(run_id: str, actor: CurrentActor, session: Session, request: Request,
                     after: Annotated[int, Query(ge=0)] = 0) -> EventSourceResponse:
    """Server-Sent Events: the run's events as they happen; ends when the run finishes."""
    await runs.get_run(session, actor=actor, run_id=run_id)  # 404/403 before the stream opens

    async def events_of() -> AsyncIterator[dict[str, str]]:
        seq = after
        while not await request.is_disconnected():
            async with get_runtime().transaction() as tx:
                found = await runs.list_run_events(tx, actor=actor, run_id=run_id, after_seq=seq)
                run = await runs.get_run(tx, actor=actor, run_id=run_id)
            for event in found:
                seq = event.seq
                yield {"event": event.type, "id": str(event.seq),
                       "data": RunEventView.of(event).model_dump_json()}
            if run.status in {"completed", "failed", "cancelled"} and not found:
                return
            await asyncio.sleep(STREAM_POLL_S)

    return EventSourceResponse(events_of(), ping=15)


@router.get("/events/stream", response_class=EventSourceResponse)
async def stream_project_events(actor: CurrentActor, request: Request,
                                type: str | None = Query(default=None, max_length=64)) -> EventSourceResponse:
    """Server-Sent Events: the project's feed from now on (use `GET /v1/events` for the past)."""

    async def feed() -> AsyncIterator[dict[str, str]]:
        # Ids are given before commit, so an event may become visible after a newer one was sent:
        # re-read a short window each time and skip what was already sent.
        started = utcnow()
        sent: dict[str, datetime] = {}
        while not await request.is_disconnected():
            floor = id_floor("evt", max(started, utcnow() - STREAM_LOOKBACK))
            async with get_runtime().transaction() as tx:
                found = await events.list_events_after(tx, actor=actor, after_id=floor, type=type)
            for event in found:
                if event.id in sent:
                    continue
                sent[event.id] = event.created_at
                yield {"event": event.type, "id": event.id, "data": json.dumps(EventView.of(event).model_dump())}
            horizon = utcnow() - 2 * STREAM_LOOKBACK
            for event_id in [k for k, when in sent.items() if when < horizon]:
                del sent[event_id]
            await asyncio.sleep(STREAM_POLL_S)

    return EventSourceResponse(feed(), ping=15)
