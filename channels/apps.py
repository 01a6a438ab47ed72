"""Channels that mint an app at the provider for one smith (a dedicated Slack app from a manifest, SL-3).

A channel that can implements ``AppFactory`` beside ``Channel``. The service layer
(app/services/provider_apps.py) keeps the rows, the cap and the transactions; the channel only speaks to
the provider: mint, update (rename), delete, and, once the hub attached the live apps' credentials,
verifies each app's requests with that app's own secret.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from channels.errors import SetupError


@dataclass(frozen=True, slots=True)
class AppSpec:
    """What an app is made from: its names and the channel's own settings (the deployment's
    ``provider_metadata``, already checked by ``AppFactory.app_settings``). ``key`` is our row's id: the
    app's request URLs carry it, so each app's requests are told apart before any parsing."""

    key: str
    display_name: str
    owner_name: str
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MintedApp:
    """The provider's answer: its app id, what may be shown, and the credentials to store sealed. An app
    that is reachable at once (an email inbox) names its ``address``: its deployment is active there,
    owned by ``owner_identity``; otherwise the deployment waits for its install link."""

    external_id: str
    public: dict[str, Any]
    secrets: dict[str, str]
    address: str | None = None
    owner_identity: str | None = None
    owner_email: str | None = None


class AppRefused(SetupError):
    """The provider refused an app change: ``field`` names the request field at fault (a name over its
    limits), ``credentials`` says the factory's own credentials were refused (shown on the card)."""

    def __init__(self, message: str, *, code: str, field: str | None = None, details: dict[str, Any] | None = None,
                 credentials: bool = False) -> None:
        super().__init__(message, code=code)
        self.field, self.details, self.credentials = field, details or {}, credentials


class AppFactory(ABC):
    """The provider side of per-smith apps (a mixin for a ``Channel``)."""

    app_noun: ClassVar[str]  # "Slack app"
    app_cap_code: ClassVar[str]  # the 429's stable code: slack_app_cap_reached
    app_cap_setting: ClassVar[str]  # the Settings field holding the cap per project
    max_display_name: ClassVar[int]

    @classmethod
    @abstractmethod
    def app_request(cls, setup: Mapping[str, Any], metadata: Mapping[str, Any], *,
                    smith_name: str) -> tuple[str, dict[str, Any]]:
        """The app's display name and settings from a deployment's ``setup`` and ``provider_metadata``
        (unknown keys ignored: nothing a request says can reach the provider's URLs); raises ``ValueError``
        as ``"<field>: <why>"`` when something is out of the provider's limits."""

    @abstractmethod
    def factory_ready(self) -> str | None:
        """None when apps can be minted now, else why not (no configuration token, ...)."""

    @abstractmethod
    async def mint_app(self, spec: AppSpec, *, public_url: str, tenant: str) -> MintedApp:
        """Create the app at the provider; ``SetupError`` when refused."""

    @abstractmethod
    async def update_app(self, external_id: str, spec: AppSpec, *, public_url: str, tenant: str) -> None:
        """Replace the app's definition (a rename); ``SetupError`` when refused."""

    @abstractmethod
    async def delete_app(self, external_id: str) -> None:
        """Delete the app at the provider (gone already counts as done); ``SetupError`` when refused."""

    @abstractmethod
    def attach_apps(self, apps: Mapping[str, Mapping[str, Any]]) -> None:
        """The live apps, keyed by our row id: public fields and opened secrets (the hub's job)."""
