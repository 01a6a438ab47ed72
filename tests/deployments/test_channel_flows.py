"""The same scenarios for every registered channel (issue 15 §5): bind by proof, the agent catch-all minting
a smith per person, a duplicate delivery stored once, a bad signature storing nothing, our own echo
ignored, a non-owner's approval tap refused, replies in order. Each channel brings its flow kit beside its
fake (``FLOW`` in ``tests/fakes/<kind>_kit.py``, tests/fakes/kits.py); the registry is the only list.

The /v1 API in-process, real run workers and outbox, the built-in model, each channel's fake server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from app.services.runtime import Runtime
from app.settings import Settings
from channels import REGISTRY
from models import InboundDelivery, OutboxEntry, Run
from tests.conftest import bearer
from tests.deployments.conftest import wait_until
from tests.fakes.kits import Flow, flow_class, new_smith

KINDS = sorted(REGISTRY)
FAKES = Path(__file__).resolve().parents[1] / "fakes"


def test_every_registered_channel_has_a_flow_kit() -> None:
    missing = [kind for kind in KINDS if not (FAKES / f"{kind}_kit.py").exists()]
    assert missing == [], f"registered channels without tests/fakes/<kind>_kit.py: {missing}"
    for kind in KINDS:
        assert flow_class(kind).kind == kind


@pytest.fixture(params=KINDS)
async def flow(request: pytest.FixtureRequest) -> AsyncIterator[Flow]:
    async with flow_class(request.param).started() as started:
        yield started


@pytest.fixture
def settings(settings: Settings, flow: Flow) -> Settings:
    return flow.configure(settings)


async def counts(runtime: Runtime) -> tuple[int, int, int]:
    """Inbound deliveries, runs, outbox entries."""
    async with runtime.transaction() as session:
        return tuple([(await session.execute(select(func.count()).select_from(table))).scalar_one()  # type: ignore[return-value]
                      for table in (InboundDelivery, Run, OutboxEntry)])


async def settled(runtime: Runtime) -> bool:
    """Nothing left to send: the outbox holds no pending or sending entry."""
    async with runtime.transaction() as session:
        busy = select(func.count()).select_from(OutboxEntry).where(OutboxEntry.status.in_(("pending", "sending")))
        return (await session.execute(busy)).scalar_one() == 0


async def bound(api: httpx.AsyncClient, token: str, flow: Flow, **agent: object) -> tuple[str, str]:
    """Connected, a smith, person 0 bound to it by proof, and the binding's confirmation received."""
    await flow.connect(api, token)
    smith_id = await new_smith(api, token, **agent)
    deployment_id = await flow.bind(api, token, smith_id)
    return smith_id, deployment_id


async def test_bind_by_proof(api: httpx.AsyncClient, admin_token: str, flow: Flow, running: None) -> None:
    # DEP-1, ID-1..ID-3: the person who proved control owns the conversation; the smith answers them.
    smith_id, deployment_id = await bound(api, admin_token, flow)
    deployment = (await api.get(f"/v1/deployments/{deployment_id}", headers=bearer(admin_token))).json()
    assert deployment["status"] == "active" and deployment["owner_identity"] == flow.identity(0)
    assert (await flow.message(0, "hello smith").send(api)).status_code == 200
    await wait_until(lambda: "You said: hello smith" in flow.replies(0), f"{flow.kind}: the reply")
    run = (await api.get("/v1/runs", params={"smith_id": smith_id}, headers=bearer(admin_token))).json()["data"][0]
    assert run["metadata"]["sender"]["identity"] == flow.identity(0) and run["metadata"]["sender"]["is_owner"]


async def test_the_agent_catch_all_mints_a_smith_per_person(
    api: httpx.AsyncClient, admin_token: str, flow: Flow, running: None
) -> None:  # DEP-4, WA-3
    await flow.connect(api, admin_token)
    agent = (await api.post("/v1/agents", json={"name": "Front desk"}, headers=bearer(admin_token))).json()
    catch_all = await api.post("/v1/deployments", headers=bearer(admin_token),
                               json={"target": {"type": "agent", "id": agent["id"]}, "kind": flow.kind})
    assert catch_all.status_code == 201, catch_all.text
    for person, text in ((0, "hi from dana"), (1, "hi from sam"), (0, "dana again")):
        assert (await flow.message(person, text).send(api)).status_code == 200
    await wait_until(lambda: "You said: dana again" in flow.replies(0) and "You said: hi from sam" in flow.replies(1),
                     f"{flow.kind}: both people's replies")
    smiths = (await api.get("/v1/smiths", headers=bearer(admin_token))).json()["data"]
    assert {s["owner_identity"] for s in smiths if s["owner_identity"]} == {flow.identity(0), flow.identity(1)}


async def test_a_duplicate_delivery_is_stored_once(
    api: httpx.AsyncClient, admin_token: str, flow: Flow, runtime: Runtime, running: None
) -> None:  # the provider retries: the same request twice is one message, one run, one reply
    await bound(api, admin_token, flow)
    message = flow.message(0, "only once")
    before = await counts(runtime)
    assert (await message.send(api)).status_code == 200
    assert (await message.send(api)).status_code == 200
    await wait_until(lambda: "You said: only once" in flow.replies(0), f"{flow.kind}: the reply")
    after = await counts(runtime)
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)
    assert flow.replies(0).count("You said: only once") == 1


async def test_a_bad_signature_stores_nothing_and_sends_nothing(
    api: httpx.AsyncClient, admin_token: str, flow: Flow, runtime: Runtime, running: None
) -> None:
    await bound(api, admin_token, flow)
    await wait_until(lambda: settled(runtime), f"{flow.kind}: the binding's confirmation, if any, sent")
    before, sent_before = await counts(runtime), flow.outbound()
    for person in (0, 1):
        refused = await flow.forged(flow.message(person, "forged hello")).send(api)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_signature"
    assert await counts(runtime) == before and flow.outbound() == sent_before


async def test_our_own_echo_wakes_nobody(
    api: httpx.AsyncClient, admin_token: str, flow: Flow, runtime: Runtime, running: None
) -> None:  # no loops: the smith never answers itself
    await bound(api, admin_token, flow)
    await wait_until(lambda: settled(runtime), f"{flow.kind}: the binding's confirmation, if any, sent")
    before = await counts(runtime)
    assert (await flow.echo("You said: hello").send(api)).status_code == 200
    assert (await flow.message(0, "after the echo").send(api)).status_code == 200  # a marker behind it
    await wait_until(lambda: "You said: after the echo" in flow.replies(0), f"{flow.kind}: the marker's reply")
    after = await counts(runtime)
    assert after[1] - before[1] == 1  # the marker's run only
    assert not any("You said: You said" in text for text in flow.replies(0))


async def test_a_non_owners_approval_tap_is_refused(
    api: httpx.AsyncClient, admin_token: str, flow: Flow, runtime: Runtime, running: None
) -> None:  # APR-3, ID-3
    smith_id, _ = await bound(api, admin_token, flow, approval_required_tools=["memory_write"])
    assert (await flow.message(0, "/remember plan = launch").send(api)).status_code == 200
    prompt = await wait_until(lambda: flow.prompt(0), f"{flow.kind}: the approval prompt")
    deliveries = (await counts(runtime))[0]
    assert (await flow.tap(1, prompt).send(api)).status_code == 200
    if flow.approves_in_words and flow.stranger_reaches_the_smith:  # email: a "yes" like any other message
        await wait_until(lambda: flow.replies(1), f"{flow.kind}: the smith's answer to the stranger")
    elif flow.approves_in_words:  # LinkedIn: taken in, in the stranger's own conversation, which nobody serves
        async def taken_in() -> bool:
            return (await counts(runtime))[0] > deliveries
        await wait_until(taken_in, f"{flow.kind}: the stranger's message taken in")
    else:
        await wait_until(lambda: any("Only the owner can decide." in text for text in flow.refusals(1)),
                         f"{flow.kind}: the stranger's refusal")
    waiting = (await api.get("/v1/runs", params={"status": "awaiting_approval"}, headers=bearer(admin_token))).json()
    assert [r["smith_id"] for r in waiting["data"]] == [smith_id]  # still waiting for its owner
    assert (await flow.tap(0, prompt).send(api)).status_code == 200
    await wait_until(lambda: "Remembered plan." in flow.replies(0), f"{flow.kind}: the tool's reply")
    memory = (await api.get(f"/v1/smiths/{smith_id}/memory", headers=bearer(admin_token))).json()["data"]
    assert [(m["key"], m["value"]) for m in memory] == [("plan", "launch")]


async def test_replies_come_in_order(api: httpx.AsyncClient, admin_token: str, flow: Flow, running: None) -> None:
    await bound(api, admin_token, flow)
    texts = [f"message {n}" for n in range(6)]
    for text in texts:
        assert (await flow.message(0, text).send(api)).status_code == 200
    expected = [f"You said: {text}" for text in texts]
    await wait_until(lambda: all(e in flow.replies(0) for e in expected), f"{flow.kind}: every reply")
    assert [r for r in flow.replies(0) if r in expected] == expected
