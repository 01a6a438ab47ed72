from __future__ import annotations
import asyncio, collections
import httpx
from sqlalchemy import event
from app.services.runtime import Runtime
from tests.conftest import bearer
from tests.fakes.telegram import FakeTelegram, private_message
from tests.deployments.conftest import connect_bot, post_update, wait_until, texts_to

async def test_count(api: httpx.AsyncClient, admin_token: str, tg: FakeTelegram, runtime: Runtime, running: None, db: str) -> None:
    if not db.startswith("sqlite"):
        return
    await connect_bot(api, admin_token)
    agent = (await api.post("/v1/agents", json={"name": "Public"}, headers=bearer(admin_token))).json()
    await api.post("/v1/deployments", json={"target": {"type": "agent", "id": agent["id"]}, "kind": "telegram"}, headers=bearer(admin_token))
    await post_update(api, tg, private_message("warm", user_id=77, first_name="Jo", update_id=1))
    await wait_until(lambda: "You said: warm" in texts_to(tg, 77), "warm")
    await asyncio.sleep(0.5)
    log = []
    def on(conn, cursor, statement, params, context, executemany):
        log.append(statement.split("\n")[0][:110])
    event.listen(runtime.engine.sync_engine, "before_cursor_execute", on)
    await post_update(api, tg, private_message("hello", user_id=77, first_name="Jo", update_id=2))
    n_ingest = len(log)
    await wait_until(lambda: "You said: hello" in texts_to(tg, 77), "reply")
    await asyncio.sleep(0.3)
    event.remove(runtime.engine.sync_engine, "before_cursor_execute", on)
    print("\nINGEST", n_ingest, "TOTAL", len(log))
    for i, s in enumerate(log):
        print(i, s)
