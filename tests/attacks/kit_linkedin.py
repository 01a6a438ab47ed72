"""How LinkedIn (channels/linkedin.py) is armed for its corpus: connected to the fake LinkedIn through the
product's own routes, a Page admin's consent given through the consent link and the fake's consent screen,
and messaging switched on (LI-3's gate open, else nothing would be taken in and every refusal would prove
nothing). The client secret signs the webhooks; an admin rotates it with a new PUT, which keeps the consent."""

from __future__ import annotations

import json
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from tests.attacks.corpus import Context
from tests.attacks.kits import Kit, _serial
from tests.fakes import linkedin as fake_li


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


class LinkedInKit(Kit):
    kind = "linkedin"
    recipe = "li_sha256"
    ROTATED = "WPL_AP1.rotatedAttackSecret.Zm9vYmFy=="
    sample_keys: ClassVar[dict[str, str]] = {"current": ROTATED, "previous": fake_li.CLIENT_SECRET,
                                             "client_id": fake_li.CLIENT_ID, "access_token": fake_li.ACCESS_TOKEN}

    def initial_key(self) -> str:
        return fake_li.CLIENT_SECRET

    async def connect(self, key: str) -> dict[str, Any]:
        connected = await self.call("PUT", "/v1/tenant/linkedin", {
            "client_id": fake_li.CLIENT_ID, "client_secret": key, "page_urn": fake_li.PAGE_URN}, 200)
        if connected["messaging_enabled"]:  # a new PUT of the same app and Page keeps the consent and the switch
            return connected
        await self._consent()
        return await self.call("PATCH", "/v1/tenant/linkedin", {"messaging_enabled": True}, 200)

    async def _consent(self) -> None:
        """As a Page admin's browser: the consent link, LinkedIn's consent screen, the callback."""
        link = await self.call("POST", "/v1/tenant/linkedin/consent", None, 201)
        opened = await self.api.get(_path(link["url"]))  # the server's own address, not IC_PUBLIC_URL's
        assert opened.status_code == 302, f"linkedin: the consent link answered {opened.status_code} {opened.text}"
        async with httpx.AsyncClient(timeout=30) as browser:
            at_linkedin = await browser.get(opened.headers["location"])
        assert at_linkedin.status_code == 302, f"linkedin: the fake's consent screen: {at_linkedin.text}"
        done = await self.api.get(_path(at_linkedin.headers["location"]))  # the state cookie goes along
        assert done.status_code == 200 and "consent given" in done.text, f"linkedin: the callback: {done.text}"

    async def rotate(self) -> str:
        connected = await self.connect(self.ROTATED)  # the app's Auth tab -> generate a new client secret
        assert connected["messaging_enabled"] and connected["consent_member"], "a new PUT lost the consent"
        return self.ROTATED

    def other_keys(self, connected: dict[str, Any]) -> dict[str, str]:
        return {"client_id": fake_li.CLIENT_ID, "access_token": fake_li.ACCESS_TOKEN}

    def message(self, text: str) -> bytes:
        serial = next(_serial)
        return fake_li.body(fake_li.page_message(text, thread=f"thr_kit-{serial}", message_id=f"msg_kit{serial}"))

    def genuine_headers(self, body: bytes, key: str) -> list[tuple[str, str]]:
        return list(fake_li.sign(body, key).items())

    def ping(self) -> bytes:  # a documented social-action notification: acknowledged, never answered
        serial = next(_serial)
        return json.dumps({"type": "ORGANIZATION_SOCIAL_ACTION", "organization": fake_li.PAGE_URN,
                           "action": "LIKE", "id": f"act_{serial}"}).encode()

    def replies(self) -> list[str]:
        return [str(m.get("text")) for m in self.server.linkedin.sent]

    async def await_new_key(self, context: Context) -> float:
        waited = await super().await_new_key(context)
        code = "3b6e1d6e-1c52-4d2c-9a55-1b1a0b6f2f10"  # the validation GET still answers with the new key
        answer = await self.api.get(f"/v1/linkedin/webhook/{context.tenant}", params={"challengeCode": code})
        assert answer.status_code == 200 and answer.json() == {
            "challengeCode": code, "challengeResponse": fake_li.challenge_response(code, self.ROTATED)}, answer.text
        return waited
