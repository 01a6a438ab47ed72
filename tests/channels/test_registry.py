"""A new channel is a module and a registry entry (issue 14, step 0): what the deployments service and
the agent's send tools need of a kind comes from the channel's declarations, not from lists that
name each kind. A stand-in channel registered here gets start links, setup modes, literal-address
checks and its send tool without any other change."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
import pytest

from app.services.actors import Actor
from app.services.channel_hub import get_hub
from app.services.conversations import Conversations, read_button
from app.services.integrations import save_integration
from app.services.runtime import Runtime
from channels import REGISTRY
from channels.base import Channel
from channels.types import Capabilities, Inbound, RawRequest, SendResult, Verdict
from models import Run
from tests.conftest import bearer


class StandIn(Channel):
    """The smallest channel: links from its public ``team`` field, addresses that start with C."""

    kind: ClassVar[str] = "slack"
    display_name: ClassVar[str] = "Stand-in"
    capabilities: ClassVar[Capabilities] = Capabilities(max_chips=3, max_chip_label=20, max_text=4000,
                                                        native_approvals=False)
    send_tool: ClassVar[str] = "standin_send_message"
    setup_modes: ClassVar[frozenset[str]] = frozenset({"start_token"})

    @classmethod
    def start_link(cls, public: Mapping[str, Any], token: str) -> str | None:
        return f"https://standin.example/{public['team']}/start/{token}" if public.get("team") else None

    @classmethod
    def address_problem(cls, address: str) -> str | None:
        return None if address.startswith("C") else "a stand-in conversation id starts with C"

    def verify(self, raw: RawRequest) -> Verdict:
        raise NotImplementedError

    def parse(self, raw: RawRequest) -> list[Inbound]:
        raise NotImplementedError

    async def send(self, address: str, payload: dict[str, Any]) -> SendResult:
        raise NotImplementedError


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> type[Channel]:
    monkeypatch.setitem(REGISTRY, StandIn.kind, StandIn)
    return StandIn


async def _smith(api: httpx.AsyncClient, token: str) -> str:
    agent = (await api.post("/v1/agents", json={"name": "A"}, headers=bearer(token))).json()
    return str((await api.post("/v1/smiths", json={"agent_id": agent["id"], "name": "S"},
                               headers=bearer(token))).json()["id"])


async def test_a_registered_channel_gets_deployments_from_its_declarations(
    api: httpx.AsyncClient, admin_token: str, admin: Actor, runtime: Runtime, standin: type[Channel]
) -> None:  # DEP-1, DEP-6
    smith_id = await _smith(api, admin_token)
    body = {"target": {"type": "smith", "id": smith_id}, "kind": "slack"}
    missing = await api.post("/v1/deployments", json=body, headers=bearer(admin_token))
    assert missing.status_code == 409 and missing.json()["error"]["code"] == "integration_not_configured"
    assert "Stand-in" in missing.json()["error"]["message"]
    async with runtime.transaction() as session:
        await save_integration(session, actor=admin, box=runtime.secrets, kind="slack", secrets={},
                               public={"team": "T1"})

    linked = await api.post("/v1/deployments", json=body, headers=bearer(admin_token))
    assert linked.status_code == 201, linked.text
    assert linked.json()["deep_link"].startswith("https://standin.example/T1/start/")
    offered = await api.post("/v1/deployments", headers=bearer(admin_token),
                             json={**body, "setup": {"mode": "oauth_install"}})
    assert offered.status_code == 422 and offered.json()["error"]["field"] == "setup.mode"
    bad = await api.post("/v1/deployments", json={**body, "address": "D1"}, headers=bearer(admin_token))
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_address"
    bound = await api.post("/v1/deployments", json={**body, "address": "C1"}, headers=bearer(admin_token))
    assert bound.status_code == 201 and bound.json()["status"] == "active"

    async with runtime.transaction() as session:
        tools = await Conversations(get_hub(runtime)).extra_tools(session, Run(id="run_x", smith_id=smith_id))
    assert [tool.name for tool in tools] == ["standin_send_message"]


def test_an_approval_buttons_data_reads_back() -> None:  # APR-2
    assert read_button("a:tok123") == ("approve", "tok123")
    assert read_button("e:tok") == ("edit", "tok")
    assert read_button("x:tok") == (None, "tok")
    assert read_button("garbage") == (None, "")
