"""Each channel's test kits, which live beside its fake in ``tests/fakes/<kind>_kit.py`` and are found from
``channels.REGISTRY`` alone (``kit_module``), so a channel registered without them fails a test:

- ``CONTRACT``, a ``Kit``: the channel on its own (tests/channels/test_contract.py): how to build it, sign
  a request, tamper with one, run its fake and make it fail;
- ``FLOW``, a ``Flow`` subclass: what the same end-to-end scenarios need (issue 15 §5,
  tests/deployments/test_channel_flows.py). A flow runs its fake, points the product's settings at it,
  connects the integration, binds a person by the channel's proof (a deep link, a wa.me greeting, an OAuth
  install), and speaks for two people (``person`` 0, who binds and owns, and 1, a stranger): their signed
  webhook requests, and what the fake received for each of them.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, ClassVar, Protocol

import httpx

from app.settings import Settings
from channels.base import Channel
from channels.types import RawRequest
from tests.conftest import bearer


class FakeServer(Protocol):
    url: str

    def inject(self, failure: str) -> None: ...


@dataclass
class ServedFake:
    """A running fake as the contract checks use it: its URL, and how to make its next send fail."""

    url: str
    inject: Callable[[str], None]


@dataclass
class Kit:
    make: Callable[[str], Channel]  # api_url -> a configured channel
    sign: Callable[[bytes], RawRequest]  # a webhook delivery the channel must accept
    tampered: Callable[[RawRequest], list[RawRequest]]  # variants verify must reject
    fake: Callable[[], AbstractAsyncContextManager[FakeServer]]
    address: str  # a conversation to send to
    text_of: Callable[[dict[str, Any]], str]  # the visible text of a rendered payload
    malformed: list[bytes]  # bodies (correctly signed) that parse must refuse


@dataclass(frozen=True)
class Post:
    """One webhook request as the provider would send it."""

    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    async def send(self, api: httpx.AsyncClient) -> httpx.Response:
        return await api.post(self.path, content=self.body, headers=self.headers)


@dataclass(frozen=True)
class Prompt:
    """An approval prompt as the person received it: the Approve button's id and what a tap names."""

    approve: str
    message: Any  # the provider's id of the prompt message (a message id, a ts, a wamid)


class Flow(ABC):
    kind: ClassVar[str]
    # Approvals answered in words ("yes" by mail, APR-3) rather than by a tap on a button: a stranger's "yes"
    # is then an ordinary message, with no refusal to show.
    approves_in_words: ClassVar[bool] = False
    # Whether a stranger writes where the bound smith hears them (email's shared inbox), or only in a
    # conversation of their own that nobody serves (a LinkedIn conversation is one member's).
    stranger_reaches_the_smith: ClassVar[bool] = True

    @classmethod
    @abstractmethod
    def started(cls) -> AbstractAsyncContextManager[Flow]:
        """Run the channel's fake for one test."""

    @abstractmethod
    def configure(self, settings: Settings) -> Settings:
        """The product's settings, pointed at this fake."""

    @abstractmethod
    async def connect(self, api: httpx.AsyncClient, token: str) -> None:
        """``PUT /v1/tenant/<kind>`` with the fake's credentials (the provider check passes)."""

    @abstractmethod
    async def bind(self, api: httpx.AsyncClient, token: str, smith_id: str) -> str:
        """Person 0 proves control of their conversation by the channel's means; the deployment's id."""

    @abstractmethod
    def identity(self, person: int) -> str:
        """The person's sender identity (``<kind>:<provider id>``)."""

    @abstractmethod
    def message(self, person: int, text: str) -> Post:
        """A signed request carrying a new text message from the person (a fresh provider id each time)."""

    @abstractmethod
    def forged(self, post: Post) -> Post:
        """The same request with a signature made with the wrong secret."""

    @abstractmethod
    def echo(self, text: str) -> Post:
        """The channel telling us about our own message (a signed request that must wake nobody)."""

    @abstractmethod
    def tap(self, person: int, prompt: Prompt) -> Post:
        """The person taps Approve on ``prompt`` (person 0's prompt, wherever the channel lets another tap)."""

    @abstractmethod
    def replies(self, person: int) -> list[str]:
        """The visible texts the fake received for the person's conversation, in order."""

    @abstractmethod
    def prompt(self, person: int) -> Prompt | None:
        """The last approval prompt sent to the person's conversation."""

    @abstractmethod
    def refusals(self, person: int) -> list[str]:
        """How the channel told the person a tap was refused (a toast, an ephemeral note, a reply)."""

    @abstractmethod
    def outbound(self) -> int:
        """How many calls that send or mark something the fake has received (not lookups)."""


def kit_module(kind: str) -> ModuleType:
    """``tests/fakes/<kind>_kit.py``, found by the registry's name alone."""
    return importlib.import_module(f"tests.fakes.{kind}_kit")


def contract_kit(kind: str) -> Kit:
    found = kit_module(kind).CONTRACT
    assert isinstance(found, Kit), f"tests/fakes/{kind}_kit.py: CONTRACT is not a Kit"
    return found


def flow_class(kind: str) -> type[Flow]:
    found = kit_module(kind).FLOW
    assert issubclass(found, Flow) and found.kind == kind, f"tests/fakes/{kind}_kit.py: FLOW is not {kind}'s"
    return found  # type: ignore[no-any-return]


async def new_smith(api: httpx.AsyncClient, token: str, **agent: Any) -> str:
    created = (await api.post("/v1/agents", json={"name": "Concierge", **agent}, headers=bearer(token))).json()
    made = await api.post("/v1/smiths", json={"agent_id": created["id"], "name": "Dana's PA"}, headers=bearer(token))
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def start_link(api: httpx.AsyncClient, token: str, smith_id: str, kind: str, mode: str) -> dict[str, Any]:
    created = await api.post("/v1/deployments", headers=bearer(token), json={
        "target": {"type": "smith", "id": smith_id}, "kind": kind, "setup": {"mode": mode}})
    assert created.status_code == 201, created.text
    return dict(created.json())

