"""The domain's core tables; the channels' own tables are in models/channel_tables.py.

Conventions: string ids with a type prefix (``agt_``, ``smt_``, ...) that sort by creation time;
timestamps are aware UTC; JSON columns hold provider-shaped or free-form data; secrets live only
in ``*_ciphertext`` columns sealed by ``app.crypto`` with the row id as associated data.
"""

from __future__ import annotations

import inspect
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow

__all__ = [
    "Agent",
    "ApiToken",
    "Approval",
    "ConsoleAccount",
    "ConsoleSession",
    "Deployment",
    "Event",
    "InboundDelivery",
    "Integration",
    "MemoryEntry",
    "Message",
    "OutboxEntry",
    "Project",
    "Run",
    "RunEvent",
    "Schedule",
    "SigninAttempt",
    "Smith",
    "Thread",
]


def _created() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


def _when() -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=True)


def _new_dict() -> dict[str, Any]:
    return {}


def _new_list() -> list[Any]:
    return []


def _signature_cached(*factories: Any) -> None:
    """Pydantic inspects a default factory's signature on every construction of a row object (about
    15 µs each for a function, up to 230 µs for ``list``); ``inspect.signature`` returns a function's
    ``__signature__`` at once, so compute it once here."""
    for factory in factories:
        factory.__signature__ = inspect.signature(factory)


_signature_cached(_new_dict, _new_list, utcnow)


def _json_dict() -> Any:
    return Field(default_factory=_new_dict, sa_type=JSON, nullable=False)


def _json_list() -> Any:
    return Field(default_factory=_new_list, sa_type=JSON, nullable=False)


class Project(SQLModel, table=True):
    """A tenant. Its ``slug`` appears in webhook URLs (``/v1/{kind}/webhook/{slug}``)."""

    __tablename__ = "project"
    id: str = Field(primary_key=True, max_length=40)
    slug: str = Field(unique=True, max_length=64)
    name: str = Field(max_length=200)
    created_at: datetime = _created()


class ConsoleAccount(SQLModel, table=True):
    """The console's sign-in. ``password_hash`` is empty until the setup link is used."""

    __tablename__ = "console_account"
    id: str = Field(primary_key=True, max_length=40)
    project_id: str = Field(foreign_key="project.id", index=True, max_length=40)
    username: str = Field(unique=True, max_length=100)
    password_hash: str = Field(default="", max_length=400)
    setup_token_hash: str = Field(default="", max_length=64)
    setup_token_expires_at: datetime | None = _when()
    created_at: datetime = _created()
    password_set_at: datetime | None = _when()


class ConsoleSession(SQLModel, table=True):
    __tablename__ = "console_session"
    id: str = Field(primary_key=True, max_length=40)
    account_id: str = Field(foreign_key="console_account.id", index=True, max_length=40)
    token_hash: str = Field(unique=True, max_length=64)
    created_at: datetime = _created()
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class SigninAttempt(SQLModel, table=True):
    """Failed console sign-ins per key (``client:<address>`` or ``account:<username>``): the
    back-off survives restarts and is shared by every process. A quiet hour forgets a key."""

    __tablename__ = "signin_attempt"
    key: str = Field(primary_key=True, max_length=200)
    failures: int = Field(default=0)
    last_failure_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)


class ApiToken(SQLModel, table=True):
    """Bearer tokens, stored as SHA-256. ``kind`` is ``admin`` (whole project), ``smith`` (one smith)
    or ``mcp`` (a caller of one MCP deployment: ``deployment_id``, and nothing else)."""

    __tablename__ = "api_token"
    __table_args__ = (
        # One live caller token per subject and deployment: the subject keys the caller's minted smith.
        Index("uq_api_token_deployment_subject", "deployment_id", "subject", unique=True,
              sqlite_where=text("revoked_at IS NULL"), postgresql_where=text("revoked_at IS NULL")),
    )
    id: str = Field(primary_key=True, max_length=40)
    project_id: str = Field(foreign_key="project.id", index=True, max_length=40)
    kind: str = Field(max_length=16)
    subject: str = Field(max_length=200)
    name: str = Field(default="", max_length=200)
    token_hash: str = Field(unique=True, max_length=64)
    hint: str = Field(default="", max_length=16)  # last 4 characters, for recognition
    smith_id: str | None = Field(default=None, index=True, max_length=40)
    deployment_id: str | None = Field(default=None, index=True, max_length=40)  # kind mcp only
    created_at: datetime = _created()
    last_used_at: datetime | None = _when()
    revoked_at: datetime | None = _when()


class Agent(SQLModel, table=True):
    __tablename__ = "agent"
    id: str = Field(primary_key=True, max_length=40)
    project_id: str = Field(foreign_key="project.id", index=True, max_length=40)
    name: str = Field(max_length=200)
    instructions: str = Field(default="", sa_type=Text)
    model: dict[str, Any] = _json_dict()  # {provider?, model?, base_url?, temperature?}
    approval_required_tools: list[str] = _json_list()
    # The agent's own model API key, sealed to ``agent:<id>:model_api_key`` (app/crypto.py); never
    # shown back. Needed for an agent's own base_url: the default IC_MODEL_API_KEY never goes there.
    model_api_key_ciphertext: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class Smith(SQLModel, table=True):
    """A persistent instance of an agent with its own memory and threads.

    Smiths minted by an agent catch-all carry ``(minted_by_deployment_id, provider_identity)``,
    unique, so simultaneous first messages from one sender mint exactly one smith.
    """

    __tablename__ = "smith"
    __table_args__ = (
        UniqueConstraint("minted_by_deployment_id", "provider_identity", name="uq_smith_minted"),
    )
    id: str = Field(primary_key=True, max_length=40)
    project_id: str = Field(foreign_key="project.id", index=True, max_length=40)
    agent_id: str = Field(foreign_key="agent.id", index=True, max_length=40)
    name: str = Field(max_length=200)
    owner_identity: str | None = Field(default=None, max_length=300)
    minted_by_deployment_id: str | None = Field(default=None, max_length=40)
    provider_identity: str | None = Field(default=None, max_length=300)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class Integration(SQLModel, table=True):
    """Per-project provider credentials. ``secrets_ciphertext`` is sealed to ``integration:<id>``."""

    __tablename__ = "integration"
    __table_args__ = (UniqueConstraint("project_id", "kind", name="uq_integration_kind"),)
    id: str = Field(primary_key=True, max_length=40)
    project_id: str = Field(foreign_key="project.id", index=True, max_length=40)
    kind: str = Field(max_length=32)
    secrets_ciphertext: str = Field(default="", sa_type=Text)
    public: dict[str, Any] = _json_dict()
    status: str = Field(default="configured", max_length=32)
    last_error: str | None = Field(default=None, sa_type=Text)
    last_delivery_at: datetime | None = _when()
    created_at: datetime = _created()
    updated_at: datetime = _created()



class Deployment(SQLModel, table=True):
    __tablename__ = "deployment"
    __table_args__ = (
        Index("ix_deployment_target", "target_type", "target_id"),
        Index("ix_deployment_kind_address", "kind", "address"),
        # One live smith binding per conversation, one live catch-all per kind: constraints, so two
        # concurrent creates or taps cannot both win (issue 13).
        Index("uq_deployment_live_binding", "project_id", "kind", "address", unique=True,
              sqlite_where=text("target_type = 'smith' AND status = 'active'"),
              postgresql_where=text("target_type = 'smith' AND status = 'active'")),
        Index("uq_deployment_live_catch_all", "project_id", "kind", unique=True,
              sqlite_where=text("target_type = 'agent' AND status <> 'revoked'"),
              postgresql_where=text("target_type = 'agent' AND status <> 'revoked'")),
    )
    id: str = Field(primary_key=True, max_length=40)
    project_id: str = Field(foreign_key="project.id", index=True, max_length=40)
    kind: str = Field(max_length=32)
    target_type: str = Field(max_length=16)  # smith | agent
    target_id: str = Field(max_length=40)
    status: str = Field(default="pending", max_length=16)  # pending | active | revoked
    address: str | None = Field(default=None, max_length=300)
    display_name: str | None = Field(default=None, max_length=200)
    owner_identity: str | None = Field(default=None, max_length=300)
    owner_email: str | None = Field(default=None, max_length=320)
    setup: dict[str, Any] = _json_dict()
    provider_metadata: dict[str, Any] = _json_dict()
    secrets_ciphertext: str = Field(default="", sa_type=Text)
    # Single-use binding token (deep links); only its hash is kept.
    start_token_hash: str | None = Field(default=None, unique=True, max_length=64)
    start_token_expires_at: datetime | None = _when()
    bound_at: datetime | None = _when()
    created_at: datetime = _created()
    updated_at: datetime = _created()
    deleted_at: datetime | None = _when()
    # Why a deployment stopped answering: deleted | replaced | agent_deleted | uninstalled.
    revoked_at: datetime | None = _when()
    revoked_reason: str | None = Field(default=None, max_length=64)


class Schedule(SQLModel, table=True):
    __tablename__ = "schedule"
    id: str = Field(primary_key=True, max_length=40)
    project_id: str = Field(foreign_key="project.id", index=True, max_length=40)
    smith_id: str = Field(foreign_key="smith.id", index=True, max_length=40)
    name: str = Field(max_length=200)
    cron: str = Field(max_length=200)
    timezone: str = Field(default="UTC", max_length=64)
    input: list[dict[str, Any]] = _json_list()
    enabled: bool = Field(default=True)
    grace_seconds: int = Field(default=3600)
    # Where the reply goes when the smith has several conversations (None: the most recently active).
    deployment_id: str | None = Field(default=None, max_length=40)
    next_fire_at: datetime | None = _when()
    last_fired_for: datetime | None = _when()
    last_run_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class Thread(SQLModel, table=True):
    """A conversation of one smith; ``external_key`` names it on its channel (chat, thread ts)."""

    __tablename__ = "thread"
    __table_args__ = (UniqueConstraint("smith_id", "external_key", name="uq_thread_external"),)
    id: str = Field(primary_key=True, max_length=40)
    project_id: str = Field(foreign_key="project.id", index=True, max_length=40)
    smith_id: str = Field(foreign_key="smith.id", index=True, max_length=40)
    deployment_id: str | None = Field(default=None, max_length=40)
    external_key: str | None = Field(default=None, max_length=300)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class Run(SQLModel, table=True):
    """The run row is the job: status, lease and attempts live here (the queue is this table)."""

    __tablename__ = "run"
    __table_args__ = (
        UniqueConstraint("schedule_id", "scheduled_for", name="uq_run_schedule_slot"),
        Index("ix_run_claim", "status", "available_at"),
        Index("ix_run_project_created", "project_id", "id"),
        # The claim asks "does an earlier run of this thread still wait or run?": two index probes,
        # however long the thread's history (an index on thread_id alone walked all of it).
        Index("ix_run_thread_status", "thread_id", "status", "id"),
    )
    id: str = Field(primary_key=True, max_length=40)
    project_id: str = Field(foreign_key="project.id", max_length=40)
    smith_id: str = Field(foreign_key="smith.id", index=True, max_length=40)
    thread_id: str | None = Field(default=None, max_length=40)
    status: str = Field(default="queued", max_length=24)
    source: str = Field(default="api", max_length=24)  # api | deployment | schedule | mcp
    input: list[dict[str, Any]] = _json_list()
    output: dict[str, Any] = _json_dict()
    run_metadata: dict[str, Any] = _json_dict()
    usage: dict[str, Any] = _json_dict()
    error: dict[str, Any] | None = Field(default=None, sa_type=JSON, nullable=True)
    deployment_id: str | None = Field(default=None, index=True, max_length=40)
    schedule_id: str | None = Field(default=None, max_length=40)
    scheduled_for: datetime | None = _when()
    attempts: int = Field(default=0)
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_expires_at: datetime | None = _when()
    available_at: datetime = _created()
    created_at: datetime = _created()
    started_at: datetime | None = _when()
    finished_at: datetime | None = _when()
    updated_at: datetime = _created()


class RunEvent(SQLModel, table=True):
    __tablename__ = "run_event"
    # The unique (run_id, seq) index also serves lookups by run: no second index to keep up.
    __table_args__ = (UniqueConstraint("run_id", "seq", name="uq_run_event_seq"),)
    id: str = Field(primary_key=True, max_length=40)
    run_id: str = Field(foreign_key="run.id", max_length=40)
    seq: int
    type: str = Field(max_length=64)
    data: dict[str, Any] = _json_dict()
    created_at: datetime = _created()


class Message(SQLModel, table=True):
    """One message of a thread, in the shape the model saw (role, content, tool calls)."""

    __tablename__ = "message"
    __table_args__ = (Index("ix_message_thread_run", "thread_id", "run_id", "id"),)
    id: str = Field(primary_key=True, max_length=40)
    thread_id: str = Field(foreign_key="thread.id", max_length=40)
    run_id: str | None = Field(default=None, index=True, max_length=40)
    role: str = Field(max_length=16)  # system | user | assistant | tool
    content: str = Field(default="", sa_type=Text)
    tool_calls: list[dict[str, Any]] = _json_list()
    tool_call_id: str | None = Field(default=None, max_length=100)
    name: str | None = Field(default=None, max_length=100)
    created_at: datetime = _created()


class MemoryEntry(SQLModel, table=True):
    __tablename__ = "memory_entry"
    __table_args__ = (UniqueConstraint("smith_id", "key", name="uq_memory_key"),)
    id: str = Field(primary_key=True, max_length=40)
    smith_id: str = Field(foreign_key="smith.id", index=True, max_length=40)
    key: str = Field(max_length=200)
    value: str = Field(default="", sa_type=Text)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class InboundDelivery(SQLModel, table=True):
    """Every accepted webhook delivery, deduplicated by the provider's own id."""

    __tablename__ = "inbound_delivery"
    __table_args__ = (
        UniqueConstraint("kind", "integration_id", "dedupe_key", name="uq_inbound_dedupe"),
    )
    id: str = Field(primary_key=True, max_length=40)
    project_id: str = Field(foreign_key="project.id", index=True, max_length=40)
    integration_id: str = Field(max_length=40)
    kind: str = Field(max_length=32)
    dedupe_key: str = Field(max_length=300)
    payload: dict[str, Any] = _json_dict()
    run_id: str | None = Field(default=None, max_length=40)
    received_at: datetime = _created()


class OutboxEntry(SQLModel, table=True):
    """One outbound send. ``idempotency_key`` (run + step) makes a re-executed step send once."""

    __tablename__ = "outbox_entry"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        # "Does an earlier entry of this conversation still wait or send?": two index probes per due
        # entry. Without it each probe walked every pending entry (4 ms a claim with 400 pending).
        Index("ix_outbox_conversation", "kind", "address", "status", "id"),
        # A provider's delivery status (WhatsApp's sent/delivered/read/failed) names the message by its id.
        Index("ix_outbox_provider_message", "kind", "provider_message_id"),
    )
    id: str = Field(primary_key=True, max_length=40)
    project_id: str = Field(foreign_key="project.id", index=True, max_length=40)
    run_id: str | None = Field(default=None, index=True, max_length=40)
    deployment_id: str | None = Field(default=None, max_length=40)
    kind: str = Field(max_length=32)
    idempotency_key: str = Field(unique=True, max_length=200)
    address: str = Field(max_length=300)
    payload: dict[str, Any] = _json_dict()
    status: str = Field(default="pending", max_length=16)  # pending | sent | dead
    attempts: int = Field(default=0)
    next_attempt_at: datetime = _created()
    provider_message_id: str | None = Field(default=None, max_length=200)
    last_error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = _created()
    sent_at: datetime | None = _when()
    # What the provider reported later (sent, delivered, read), never downgraded; a failure makes the
    # entry dead instead.
    receipt: str | None = Field(default=None, max_length=16)
    receipt_at: datetime | None = _when()



class Approval(SQLModel, table=True):
    __tablename__ = "approval"
    id: str = Field(primary_key=True, max_length=40)
    run_id: str = Field(foreign_key="run.id", index=True, max_length=40)
    tool_call_id: str = Field(max_length=100)
    tool_name: str = Field(max_length=100)
    arguments: dict[str, Any] = _json_dict()
    status: str = Field(default="pending", max_length=16)  # pending | approved | rejected | edited
    callback_token: str = Field(unique=True, max_length=64)
    decided_by: str | None = Field(default=None, max_length=300)
    message: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = _created()
    decided_at: datetime | None = _when()


class Event(SQLModel, table=True):
    """The project's feed. Never holds a secret: services build ``data`` from public fields."""

    __tablename__ = "event"
    __table_args__ = (
        Index("ix_event_project_id", "project_id", "id"),
        Index("ix_event_project_type", "project_id", "type", "id"),
    )
    id: str = Field(primary_key=True, max_length=40)
    project_id: str = Field(foreign_key="project.id", max_length=40)
    type: str = Field(max_length=64)
    data: dict[str, Any] = _json_dict()
    run_id: str | None = Field(default=None, max_length=40)
    smith_id: str | None = Field(default=None, max_length=40)
    deployment_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = _created()
