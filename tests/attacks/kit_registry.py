"""Every channel's kit, by kind: kits.py holds the base and the first channels', later ones have a module of
their own (kits.py is long enough)."""

from __future__ import annotations

from tests.attacks.kit_email import EmailKit
from tests.attacks.kit_linkedin import LinkedInKit
from tests.attacks.kits import Kit, SlackKit, TelegramKit, WhatsAppKit

KITS: dict[str, type[Kit]] = {
    kit.kind: kit for kit in (TelegramKit, SlackKit, WhatsAppKit, EmailKit, LinkedInKit)}
