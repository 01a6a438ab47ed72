"""The agent loop's view of a thread: its own run whole, earlier runs only up to HISTORY_LIMIT."""

from __future__ import annotations

import httpx

from app.services.runs import InputMessage, enqueue_run
from app.services.runtime import Runtime
from jobs.thread_messages import HISTORY_LIMIT, recent_turns, thread_history
from models import Smith
from tests.runs.conftest import make_smith


def _said(count: int, prefix: str) -> list[InputMessage]:
    return [InputMessage(role="user" if i % 2 == 0 else "assistant", content=f"{prefix} {i}") for i in range(count)]


async def test_a_run_reads_its_own_messages_and_the_recent_past_of_its_thread(
    api: httpx.AsyncClient, admin_token: str, runtime: Runtime
) -> None:  # DEP-4 (threads persist): a long chat does not load its whole past on every run
    _, smith_id = await make_smith(api, admin_token)
    async with runtime.transaction() as session:
        smith = await session.get(Smith, smith_id)
        assert smith is not None
        first = await enqueue_run(session, smith=smith, messages=_said(50, "first"), source="api", sender=None)
        thread_id = first.thread_id
        await enqueue_run(session, smith=smith, messages=_said(50, "second"), source="api", sender=None,
                          thread_id=thread_id)
        current = await enqueue_run(session, smith=smith, messages=_said(3, "current"), source="api",
                                    sender=None, thread_id=thread_id)
        await enqueue_run(session, smith=smith, messages=_said(5, "later"), source="api", sender=None,
                          thread_id=thread_id)

    async with runtime.transaction() as session:
        whole = await thread_history(session, current)
        turns = await recent_turns(session, current)

    assert len(whole) == 103  # everything up to and including the current run, nothing later
    assert [t.id for t in turns] == [m.id for m in whole[-(HISTORY_LIMIT + 3):]]
    assert [t.content for t in turns[-3:]] == ["current 0", "current 1", "current 2"]
    assert turns[0].content == f"first {50 - (HISTORY_LIMIT - 50)}"  # the window reaches into the first run
    assert all(not t.content.startswith("later") for t in turns)
    assert all(t.tool_calls == [] for t in turns)
