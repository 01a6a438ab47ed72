"""Inbound routing (DEP-3..DEP-6, TG-2): who answers a message, binding by a start link, minting a
catch-all's smith per sender, and which deployments reach a smith. Every inbound message and every
run asks these, so they read ids through hot statements (models/hot.py), not ORM rows."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import and_, bindparam, or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.services.bindings import replace_binding
from app.services.errors import Invalid
from app.services.events import record_event
from models import Agent, Deployment, Run, Schedule, Smith
from models.hot import Hot, flush_pending
from models.types import new_id, utcnow


def hash_start_token(token: str) -> str:
    return hashlib.sha256(f"start:{token}".encode()).hexdigest()


# Built once: every inbound message runs these.
_CATCH_ALL = select(Deployment).where(
    Deployment.project_id == bindparam("project_id"), Deployment.kind == bindparam("kind"),
    Deployment.target_type == "agent", Deployment.status != "revoked")
# Hot (models/hot.py): routing reads ids, not ORM rows; only minting builds a Smith.
_BINDING_OR_CATCH_ALL = Hot(select(  # one query for both: the binding wins in resolve()
    Deployment.id, Deployment.target_type, Deployment.target_id, Deployment.status, Deployment.owner_identity
).where(
    Deployment.project_id == bindparam("project_id"), Deployment.kind == bindparam("kind"),
    Deployment.deleted_at.is_(None),  # type: ignore[union-attr]
    or_(and_(Deployment.target_type == "smith", Deployment.status == "active",
             Deployment.address == bindparam("address")),
        Deployment.target_type == "agent")).order_by(Deployment.id))
_SMITH_ID = Hot(select(Smith.id).where(Smith.id == bindparam("smith_id")))
_MINTED_ID = Hot(select(Smith.id).where(Smith.minted_by_deployment_id == bindparam("deployment_id"),
                                        Smith.provider_identity == bindparam("identity")))
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


_WAKE = Hot(select(Deployment.provider_metadata).where(
    Deployment.project_id == bindparam("project_id"), Deployment.kind == bindparam("kind"),
    Deployment.address == bindparam("address"), Deployment.target_type == "smith", Deployment.status == "active"))


async def hears_everything(session: AsyncSession, *, project_id: str, kind: str, address: str) -> bool:
    """SL-5: a conversation bound with ``provider_metadata.wake = "all_messages"`` wakes its smith on
    every message, not only on mentions."""
    row = await _WAKE.first(session, {"project_id": project_id, "kind": kind, "address": address})
    return row is not None and isinstance(row[0], dict) and row[0].get("wake") == "all_messages"


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
    await flush_pending(session)
    candidates = await _BINDING_OR_CATCH_ALL.all(session, {"project_id": project_id, "kind": kind,
                                                           "address": address})
    exact = next((d for d in candidates if d[1] == "smith"), None)
    if exact is not None and await _SMITH_ID.first(session, {"smith_id": exact[2]}):
        deployment_id, _, smith_id, _, owner = exact
        return Route(smith_id, deployment_id, sender_id == owner, owner)
    catch_all = next((d for d in candidates if d[1] == "agent"), None)
    if catch_all is None or catch_all[3] != "active":
        return None
    found = await _MINTED_ID.first(session, {"deployment_id": catch_all[0], "identity": sender_id})
    if found is not None:
        smith_id = str(found[0])
    elif not mint:
        return None
    else:
        deployment = await session.get(Deployment, catch_all[0])
        assert deployment is not None
        smith_id = (await _mint(session, deployment, sender_id, sender_display)).id  # looked up just above
    return Route(smith_id, catch_all[0], True, sender_id)  # a minted smith belongs to its sender (ID-3)


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
    await flush_pending(session)
    smith = await _SMITH_REACH.first(session, {"smith_id": smith_id})
    if smith is None:
        return []
    minted_by, identity = smith
    own_chat = identity.split(":", 1)[1] if identity and ":" in identity else None
    rows = await _OF_SMITH.all(session, {"smith_id": smith_id, "minted_by": minted_by or ""})
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
    latest = await _LATEST_DEPLOYMENT_RUN.first(session, {"smith_id": smith_id})
    recent = latest[0] if latest else None
    found.sort(key=lambda r: (r.deployment_id == recent, r.bound_at.isoformat() if r.bound_at else ""),
               reverse=True)
    return [Conversation(r.deployment_id, r.kind, str(r.address), r.owner_identity) for r in found]


async def deployment_kind(session: AsyncSession, deployment_id: str) -> str | None:
    """The kind of a deployment (also when revoked since: a run started before still replies)."""
    await flush_pending(session)
    row = await _KIND.first(session, {"deployment_id": deployment_id})
    return None if row is None else str(row[0])


# -- where a smith's own messages go (SCH-2) ------------------------------------------------------------


async def conversation_owner(session: AsyncSession, *, smith_id: str, kind: str, address: str) -> str | None:
    """Who owns the smith's live conversation at ``address``: the binding's owner, or for a smith
    minted by a catch-all, the sender it was minted for."""
    for conversation in await conversations_of(session, smith_id):
        if conversation.kind == kind and conversation.address == address:
            return conversation.owner_identity
    return None


async def delivery_conversation(session: AsyncSession, run: Run) -> Conversation | None:
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


# Hot (models/hot.py): every run asks, for its send tools and its reply.
_SMITH_REACH = Hot(select(Smith.minted_by_deployment_id, Smith.provider_identity)
                   .where(Smith.id == bindparam("smith_id")))
_OF_SMITH = Hot(select(Deployment.id, Deployment.project_id, Deployment.kind, Deployment.target_type,
                       Deployment.address, Deployment.owner_identity, Deployment.bound_at).where(
    or_(and_(Deployment.target_type == "smith", Deployment.target_id == bindparam("smith_id")),
        Deployment.id == bindparam("minted_by")),
    Deployment.status == "active", Deployment.deleted_at.is_(None)))  # type: ignore[union-attr]
_LATEST_DEPLOYMENT_RUN = Hot(select(Run.deployment_id).where(
    Run.smith_id == bindparam("smith_id"), Run.source == "deployment").order_by(Run.id.desc()).limit(1))
_KIND = Hot(select(Deployment.kind).where(Deployment.id == bindparam("deployment_id")))
