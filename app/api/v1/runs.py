from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query
from sse_starlette.sse import EventSourceResponse
from starlette.types import Receive, Scope, Send

from app.api.deps import CurrentActor, Session
from app.api.errors import error_responses
from app.api.v1.common import Cursor, Limit, ListResponse
from app.services import runs, streams
from app.services.runs import Decision, RunCreate, RunEventView, RunView

router = APIRouter(tags=["runs"])


async def _view(session: Session, run_id: str, actor: CurrentActor) -> RunView:
    run = await runs.get_run(session, actor=actor, run_id=run_id)
    return RunView.of(run, await runs.pending_approval(session, run), admin=actor.is_admin)


@router.post("/smiths/{smith_id}/runs", status_code=202, response_model=RunView)
async def create_run(smith_id: str, body: RunCreate, actor: CurrentActor, session: Session) -> RunView:
    """Queue a run of the smith on `input`. Poll `GET /v1/runs/{id}` or stream its events."""
    run = await runs.create_run(session, actor=actor, smith_id=smith_id, body=body)
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


@router.post("/runs/{run_id}/cancel", response_model=RunView, responses=error_responses(409))
async def cancel_run(run_id: str, actor: CurrentActor, session: Session) -> RunView:
    return RunView.of(await runs.cancel_run(session, actor=actor, run_id=run_id), admin=actor.is_admin)


@router.post("/runs/{run_id}/submit", response_model=RunView, responses=error_responses(409))
async def submit(run_id: str, body: Decision, actor: CurrentActor, session: Session) -> RunView:
    """Approve, reject or edit the tool call a paused run waits on (APR-1)."""
    run = await runs.submit_decision(session, actor=actor, run_id=run_id, decision=body)
    return RunView.of(run)


class _Stream(EventSourceResponse):
    """Releases the stream's lease however the response ends (also when cancelled or never started)."""

    media_type = "text/event-stream"  # as a class attribute, so that FastAPI documents it

    def __init__(self, lease: streams.Lease, content: AsyncIterator[dict[str, str]]) -> None:
        super().__init__(content, ping=15)
        self.lease = lease

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.lease.release()


@router.get("/runs/{run_id}/stream", response_class=_Stream, status_code=200,
            response_description="Events named by their type, `id` the run event's `seq`, `data` a RunEventView "
                                 "as JSON.")
async def stream_run(run_id: str, actor: CurrentActor, session: Session,
                     after: Annotated[int, Query(ge=0)] = 0) -> EventSourceResponse:
    """Server-Sent Events: the run's events as they happen; ends when the run finishes. Closes with a
    `stream.closed` event when the token is revoked. 429 `too_many_streams` over the stream limits."""
    await runs.get_run(session, actor=actor, run_id=run_id)  # 404/403 before the stream opens
    lease = streams.get_hub().open(actor, run_id=run_id, after_seq=after)
    return _Stream(lease, streams.run_stream(lease, run_id=run_id, after_seq=after))


@router.get("/events/stream", response_class=_Stream, status_code=200,
            response_description="Events named by their type, `id` the event's id, `data` an EventView as JSON.")
async def stream_project_events(actor: CurrentActor,
                                type: str | None = Query(default=None, max_length=64)) -> EventSourceResponse:
    """Server-Sent Events: the project's feed from now on (use `GET /v1/events` for the past). Closes with
    a `stream.closed` event when the token is revoked. 429 `too_many_streams` over the stream limits."""
    lease = streams.get_hub().open(actor, type_filter=type)
    return _Stream(lease, streams.project_feed(lease))
