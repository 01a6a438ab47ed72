"""Inbound routing (DEP-3..DEP-6, TG-2): who answers a message, binding by a start link, minting a
catch-all's smith per sender, and which deployments reach a smith. Every inbound message and every
run asks these, so they read ids through the store (models/store/routing.py), not ORM rows."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.services.bindings import replace_binding
from app.services.errors import Invalid
from app.services.events import record_event
from models import Agent, Deployment, Schedule, Smith
from models.store import routing as store
from models.store.runs import RunLike
from models.types import new_id, utcnow


def hash_start_token(token: str) -> str:
    return hashlib.sha256(f"start:{token}".encode()).hexdigest()


# Built once: every inbound message may run these (the hot reads are the store's).
_CATCH_ALL = select(Deployment).where(
    Deployment.project_id == bindparam("project_id"), Deployment.kind == bindparam("kind"),
    Deployment.target_type == "agent", Deployment.status != "revoked")
_MINTED = select(Smith).where(Smith.minted_by_deployment_id == bindparam("deployment_id"),
                              Smith.provider_identity == bindparam("identity"))


class ChannelThread(NamedTuple):
    """Where a person talks to a smith: the channel, its address (which names the installation, e.g.
    a Slack ``team:channel``) and the thread in it, if any (a Slack thread, a Telegram topic). Runs
    carry it in their metadata; replies and approval prompts go back to exactly this place."""

    kind: str
    address: str
    thread: str | None = None

    @property
    def key(self) -> str:
        """The smith's thread of history for this conversation (a Slack thread is a thread of its own)."""
        return f"{self.kind}:{self.address}" + (f":{self.thread}" if self.thread else "")

    def metadata(self) -> dict[str, str]:
        return {"address": self.address, **({"thread": self.thread} if self.thread else {})}


async def hears_everything(session: AsyncSession, *, project_id: str, kind: str, address: str) -> bool:
    """SL-5: a conversation bound with ``provider_metadata.wake = "all_messages"`` wakes its smith on
    every message, not only on mentions."""
    metadata = await store.binding_metadata(session, project_id=project_id, kind=kind, address=address)
    return metadata is not None and metadata.get("wake") == "all_messages"


class Route(NamedTuple):
    """Who answers an inbound message (``resolve``)."""

    smith_id: str
    deployment_id: str
    is_owner: bool  # the sender owns the conversation (ID-2, ID-3)
    owner_identity: str | None  # who may decide the conversation's approvals


async def find_catch_all(session: AsyncSession, *, project_id: str, kind: str) -> Deployment | None:
    return (await session.execute(_CATCH_ALL, {"project_id": project_id, "kind": kind})).scalars().first()


class Bound(NamedTuple):
    deployment: Deployment
    replaced: Deployment | None  # the chat's previous binding, now revoked


async def bind_start_token(session: AsyncSession, *, project_id: str, kind: str, token: str, sender_id: str,
                           address: str) -> Bound | None:
    """TG-2: a valid, unused, unexpired token binds the sender's chat, replacing the chat's previous
    binding (the tap proves the person controls the chat). None when not valid."""
    deployment = (await session.execute(select(Deployment).where(
        Deployment.project_id == project_id, Deployment.kind == kind,
        Deployment.start_token_hash == hash_start_token(token)))).scalar_one_or_none()
    now = utcnow()
    if (deployment is None or deployment.status == "revoked" or deployment.start_token_expires_at is None
            or deployment.start_token_expires_at < now):
        return None
    replaced = await replace_binding(session, deployment=deployment, address=address)  # one per chat
    deployment.status, deployment.address, deployment.owner_identity = "active", address, sender_id
    deployment.bound_at, deployment.updated_at = now, now
    deployment.start_token_hash, deployment.start_token_expires_at = None, None  # single use
    await record_event(session, project_id=project_id, type="deployment.bound", deployment_id=deployment.id,
                       smith_id=deployment.target_id,
                       data={"deployment_id": deployment.id, "kind": kind, "smith_id": deployment.target_id,
                             "address": address, "identity": sender_id})
    return Bound(deployment, replaced)


async def resolve(session: AsyncSession, *, project_id: str, kind: str, address: str, sender_id: str,
                  sender_display: str, mint: bool = True) -> Route | None:
    """Who answers a message: an exact smith binding wins, else the kind's catch-all mints or finds the
    sender's own smith (DEP-3..DEP-5); without ``mint`` (a sender the provider does not vouch for) it only
    finds one."""
    candidates = await store.route_candidates(session, project_id=project_id, kind=kind, address=address)
    exact = next((d for d in candidates if d.target_type == "smith"), None)
    if exact is not None and await store.smith_exists(session, smith_id=exact.target_id):
        return Route(exact.target_id, exact.deployment_id, sender_id == exact.owner_identity, exact.owner_identity)
    catch_all = next((d for d in candidates if d.target_type == "agent"), None)
    if catch_all is None or catch_all.status != "active":
        return None
    found = await store.minted_smith_id(session, deployment_id=catch_all.deployment_id, identity=sender_id)
    if found is not None:
        smith_id = found
    elif not mint:
        return None
    else:
        deployment = await session.get(Deployment, catch_all.deployment_id)
        assert deployment is not None
        smith_id = (await _mint(session, deployment, sender_id, sender_display)).id  # looked up just above
    return Route(smith_id, catch_all.deployment_id, True, sender_id)  # a minted smith belongs to its sender (ID-3)


async def mint_smith(session: AsyncSession, *, deployment: Deployment, identity: str, display: str) -> Smith:
    """DEP-4: one smith per (deployment, provider identity), even under concurrent first messages."""
    found = (await session.execute(_MINTED, {"deployment_id": deployment.id, "identity": identity})
             ).scalar_one_or_none()
    return found if found is not None else await _mint(session, deployment, identity, display)


async def _mint(session: AsyncSession, deployment: Deployment, identity: str, display: str) -> Smith:
    """Insert the smith (the caller found none); a concurrent first message that won the unique key
    gives its smith instead."""
    params = {"deployment_id": deployment.id, "identity": identity}
    agent = await session.get(Agent, deployment.target_id)
    assert agent is not None
    smith = Smith(id=new_id("smt"), project_id=deployment.project_id, agent_id=agent.id,
                  name=f"{display or identity} ({deployment.kind})"[:200], owner_identity=identity,
                  minted_by_deployment_id=deployment.id, provider_identity=identity)
    try:
        async with session.begin_nested():
            session.add(smith)
    except IntegrityError:
        return (await session.execute(_MINTED, params)).scalar_one()
    await record_event(session, project_id=deployment.project_id, type="smith.minted", smith_id=smith.id,
                       deployment_id=deployment.id,
                       data={"smith_id": smith.id, "deployment_id": deployment.id, "identity": identity})
    return smith


class SendTarget(NamedTuple):
    """An active deployment that reaches a smith, and the address its outbound messages go to."""

    deployment_id: str
    project_id: str
    kind: str
    address: str | None


class _Reach(NamedTuple):
    deployment_id: str
    project_id: str
    kind: str
    address: str | None
    owner_identity: str | None
    bound_at: datetime | None


async def _reach(session: AsyncSession, smith_id: str) -> list[_Reach]:
    """Active deployments that reach this smith: its own bindings (their chat and owner), or the
    catch-all that minted it (the minted sender's own chat, and that sender as its owner)."""
    origin = await store.smith_origin(session, smith_id=smith_id)
    if origin is None:
        return []
    identity = origin.provider_identity
    own_chat = identity.split(":", 1)[1] if identity and ":" in identity else None
    rows = await store.deployments_of_smith(session, smith_id=smith_id, minted_by=origin.minted_by_deployment_id)
    return [_Reach(dep_id, project_id, kind, address, owner, bound) if target_type == "smith"
            else _Reach(dep_id, project_id, kind, own_chat, identity, bound)
            for dep_id, project_id, kind, target_type, address, owner, bound in rows]


async def send_targets(session: AsyncSession, smith_id: str) -> list[SendTarget]:
    """Where the smith's send tools write (DEP-6)."""
    return [SendTarget(r.deployment_id, r.project_id, r.kind, r.address) for r in await _reach(session, smith_id)]


class Conversation(NamedTuple):
    """A live conversation of a smith: the deployment, its kind, the address and who owns it."""

    deployment_id: str
    kind: str
    address: str
    owner_identity: str | None


async def conversations_of(session: AsyncSession, smith_id: str) -> list[Conversation]:
    """Every live conversation of the smith, most recently active first: the deployment whose
    message started the smith's latest run, then the most recently bound."""
    found = [r for r in await _reach(session, smith_id) if r.address]
    if not found:
        return []
    recent = await store.latest_run_deployment(session, smith_id=smith_id)
    found.sort(key=lambda r: (r.deployment_id == recent, r.bound_at.isoformat() if r.bound_at else ""),
               reverse=True)
    return [Conversation(r.deployment_id, r.kind, str(r.address), r.owner_identity) for r in found]


# -- where a smith's own messages go (SCH-2) ------------------------------------------------------------


async def conversation_owner(session: AsyncSession, *, smith_id: str, kind: str, address: str) -> str | None:
    """Who owns the smith's live conversation at ``address``: the binding's owner, or for a smith
    minted by a catch-all, the sender it was minted for."""
    for conversation in await conversations_of(session, smith_id):
        if conversation.kind == kind and conversation.address == address:
            return conversation.owner_identity
    return None


async def delivery_conversation(session: AsyncSession, run: RunLike) -> Conversation | None:
    """Where a run that no conversation started (a schedule's, an API call's) delivers its reply,
    chips and approval prompt: the schedule's named deployment while it is live, else the smith's
    most recently active conversation; None when the smith has none (the reply stays on the run)."""
    conversations = await conversations_of(session, run.smith_id)
    if not conversations:
        return None
    if run.schedule_id:
        named = (await session.execute(select(Schedule.deployment_id).where(
            Schedule.id == run.schedule_id))).scalar_one_or_none()
        for conversation in conversations:
            if named and conversation.deployment_id == named:
                return conversation
    return conversations[0]


DELIVERY_RULE = ("Where the replies of this schedule's runs go when the smith has several conversations: "
                 "this deployment while it is live; otherwise (and by default) the smith's most recently active "
                 "conversation. With none, the reply stays on the run.")


async def check_delivery_deployment(session: AsyncSession, *, smith_id: str, deployment_id: str) -> None:
    """A schedule may name only a live conversation of its own smith."""
    if not any(c.deployment_id == deployment_id for c in await conversations_of(session, smith_id)):
        raise Invalid(f"deployment {deployment_id} is not a live conversation of this smith",
                      code="invalid_delivery_deployment", field="deployment_id")

