"""Tables that serve the messaging channels: the workspaces that installed an app, the apps minted at a
provider for one smith, and when a person last wrote (for channels with a reply window)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.tables import _created, _json_dict, _when

__all__ = ["ConversationActivity", "Installation", "ProviderApp"]


class Installation(SQLModel, table=True):
    """One workspace that installed an integration's app, with its own tokens (Bolt's installation
    store: one shared Slack app, a bot token per team). ``secrets_ciphertext`` is sealed to its id."""

    __tablename__ = "installation"
    __table_args__ = (UniqueConstraint("integration_id", "external_id", name="uq_installation_external"),)
    id: str = Field(primary_key=True, max_length=40)
    project_id: str = Field(foreign_key="project.id", index=True, max_length=40)
    integration_id: str = Field(index=True, max_length=40)
    kind: str = Field(max_length=32)
    external_id: str = Field(max_length=64)  # the provider's id: a Slack team id
    name: str = Field(default="", max_length=200)
    status: str = Field(default="active", max_length=16)  # active | revoked
    public: dict[str, Any] = _json_dict()  # bot user id, scopes, installer: never a secret
    secrets_ciphertext: str = Field(default="", sa_type=Text)
    created_at: datetime = _created()
    updated_at: datetime = _created()
    revoked_at: datetime | None = _when()


class ProviderApp(SQLModel, table=True):
    """An app minted at the provider for one smith (a dedicated Slack app from a manifest, SL-3), with its
    own credentials (client secret, signing secret) sealed to its id. ``minting`` reserves a place under
    the project's cap while the provider is asked; ``live`` once its credentials are stored; ``deleted``
    once the provider deleted it. ``external_id`` is the provider's app id (none while minting)."""

    __tablename__ = "provider_app"
    __table_args__ = (UniqueConstraint("integration_id", "external_id", name="uq_provider_app_external"),)
    id: str = Field(primary_key=True, max_length=40)
    project_id: str = Field(foreign_key="project.id", index=True, max_length=40)
    integration_id: str = Field(index=True, max_length=40)
    kind: str = Field(max_length=32)
    external_id: str | None = Field(default=None, max_length=64)
    smith_id: str = Field(max_length=40)
    name: str = Field(default="", max_length=200)
    status: str = Field(default="minting", max_length=16)  # minting | live | deleted
    public: dict[str, Any] = _json_dict()  # client id, assistant settings: never a secret
    secrets_ciphertext: str = Field(default="", sa_type=Text)
    created_at: datetime = _created()
    updated_at: datetime = _created()
    deleted_at: datetime | None = _when()


class ConversationActivity(SQLModel, table=True):
    """When a person last wrote in a conversation, for channels that may only answer within a window
    after that (WhatsApp's 24 hours, WA-4). One row per conversation, updated on every message."""

    __tablename__ = "conversation_activity"
    project_id: str = Field(foreign_key="project.id", primary_key=True, max_length=40)
    kind: str = Field(primary_key=True, max_length=32)
    address: str = Field(primary_key=True, max_length=300)
    last_inbound_at: datetime = _created()
