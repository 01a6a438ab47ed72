"""The Cloudflare API calls of the email channel (reference/email.md): the token, the zone, Email Routing,
the Email Worker's upload, routing rules and the Email Service's send endpoint. Every answer uses
Cloudflare's envelope ``{success, errors: [{code, message}], result}``.

A refusal names the permission the call needs, so a person fixing a token knows what to add.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import httpx

from channels.errors import SetupError

# What each call needs of an API token (Cloudflare's permission names, as its token editor shows them).
ZONE_READ = "Zone → Zone → Read"
ROUTING_EDIT = "Zone → Email Routing Rules → Edit"
ZONE_SETTINGS_READ = "Zone → Zone Settings → Read"  # reading Email Routing's status (not a rules permission)
WORKERS_EDIT = "Account → Workers Scripts → Edit"
SENDING_EDIT = "Account → Email Sending → Edit"
WORKER_PREFIX = "ingram-email-"
COMPATIBILITY_DATE = "2025-09-01"


@dataclass(frozen=True, slots=True)
class CloudflareError(Exception):
    status: int
    code: int
    message: str
    retry_after: float | None = None

    def __str__(self) -> str:
        return f"Cloudflare: {self.message} (code {self.code}, HTTP {self.status})"


def worker_source() -> str:
    """The Email Worker kept in this repository (channels/email_worker.js)."""
    return resources.files("channels").joinpath("email_worker.js").read_text(encoding="utf-8")


class Cloudflare:
    """One account's API, with one API token, over the channel's httpx client."""

    def __init__(self, http: httpx.AsyncClient, api_url: str, account_id: str, token: str) -> None:
        self.http, self.api_url, self.account_id, self.token = http, api_url.rstrip("/"), account_id, token

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self.http.request(method, f"{self.api_url}{path}", headers={
                "Authorization": f"Bearer {self.token}"}, timeout=20, **kwargs)
        except httpx.HTTPError as exc:
            raise SetupError(f"Cloudflare could not be reached: {type(exc).__name__}",
                             code="provider_unreachable") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code < 400 and isinstance(body, dict) and body.get("success", True):
            return body.get("result") if isinstance(body, dict) else None
        errors = body.get("errors") if isinstance(body, dict) else None
        first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
        retry_after = response.headers.get("retry-after")
        raise CloudflareError(response.status_code, int(first.get("code") or 0),
                              str(first.get("message") or response.reason_phrase),
                              float(retry_after) if retry_after and retry_after.isdigit() else None)

    async def checked(self, method: str, path: str, *, needs: str, what: str, **kwargs: Any) -> Any:
        """``call`` for setup: a refusal becomes a ``SetupError`` naming the permission ``needs``."""
        try:
            return await self.call(method, path, **kwargs)
        except CloudflareError as exc:
            if exc.status in (401, 403):
                raise SetupError(f"Cloudflare refused to {what}: the API token needs the permission "
                                 f"\"{needs}\" ({exc.message})", code="cloudflare_permission_missing") from exc
            raise SetupError(f"Cloudflare refused to {what}: {exc.message} (code {exc.code})",
                             code="cloudflare_error") from exc

    async def verify_token(self) -> None:
        try:
            await self.call("GET", "/user/tokens/verify")
        except CloudflareError as exc:
            if exc.status in (400, 401, 403):
                try:  # an account-owned token verifies under its account
                    await self.call("GET", f"/accounts/{self.account_id}/tokens/verify")
                    return
                except CloudflareError:
                    pass
            raise SetupError(f"Cloudflare refused the API token: {exc.message}", code="invalid_api_token") from exc

    async def zone_of(self, domain: str) -> dict[str, Any]:
        found = await self.checked("GET", "/zones", needs=ZONE_READ, what=f"look up the zone {domain}",
                                   params={"name": domain, "account.id": self.account_id})
        if not found:
            raise SetupError(f"{domain} is not a zone of this Cloudflare account: add the domain to Cloudflare "
                             "first (its nameservers must be Cloudflare's)", code="cloudflare_zone_not_found")
        return dict(found[0])

    async def routing(self, zone_id: str) -> dict[str, Any]:
        return dict(await self.checked("GET", f"/zones/{zone_id}/email/routing", needs=ZONE_SETTINGS_READ,
                                       what="read the zone's Email Routing settings") or {})

    async def upload_worker(self, name: str, bindings: dict[str, tuple[str, str]]) -> None:
        """PUT the script as an ES module with its bindings: {binding name: (secret_text|plain_text, value)}."""
        metadata = {"main_module": "worker.js", "compatibility_date": COMPATIBILITY_DATE,
                    "bindings": [{"type": kind, "name": key, "text": value} for key, (kind, value) in bindings.items()]}
        files = {"metadata": (None, json.dumps(metadata), "application/json"),
                 "worker.js": ("worker.js", worker_source(), "application/javascript+module")}
        await self.checked("PUT", f"/accounts/{self.account_id}/workers/scripts/{name}", needs=WORKERS_EDIT,
                           what="upload the Email Worker", files=files)

    async def add_rule(self, zone_id: str, address: str, worker: str) -> str:
        rule = await self.checked("POST", f"/zones/{zone_id}/email/routing/rules", needs=ROUTING_EDIT,
                                  what=f"route {address} to the Email Worker", json={
                                      "name": f"Ingram: {address}", "enabled": True, "priority": 0,
                                      "matchers": [{"type": "literal", "field": "to", "value": address}],
                                      "actions": [{"type": "worker", "value": [worker]}]})
        rule_id = str((rule or {}).get("id") or (rule or {}).get("tag") or "")
        if not rule_id:
            raise SetupError("Cloudflare's answer lacked the routing rule's id", code="cloudflare_error")
        return rule_id

    async def delete_rule(self, zone_id: str, rule_id: str) -> None:
        try:
            await self.call("DELETE", f"/zones/{zone_id}/email/routing/rules/{rule_id}")
        except CloudflareError as exc:
            if exc.status == 404:
                return  # gone already: what was asked for
            raise SetupError(f"Cloudflare refused to delete the routing rule: {exc.message}",
                             code="cloudflare_permission_missing" if exc.status in (401, 403) else "cloudflare_error"
                             ) from exc

    async def set_catch_all(self, zone_id: str, worker: str, active: bool) -> None:
        """EM-4: every address of the domain without a rule of its own goes to the Worker (or, off, is dropped)."""
        actions = [{"type": "worker", "value": [worker]}] if active else [{"type": "drop"}]
        await self.checked("PUT", f"/zones/{zone_id}/email/routing/rules/catch_all", needs=ROUTING_EDIT,
                           what="set the domain's catch-all rule", json={
                               "name": "Ingram: catch-all", "enabled": active, "matchers": [{"type": "all"}],
                               "actions": actions})

    async def send(self, message: dict[str, Any]) -> dict[str, Any]:
        """The Email Service's send; ``CloudflareError`` as Cloudflare answered (the outbox classifies it)."""
        return dict(await self.call("POST", f"/accounts/{self.account_id}/email/sending/send", json=message) or {})


def worker_name(tenant: str) -> str:
    """Cloudflare's script names: lower-case letters, digits, - and _, at most 63, ending in a letter or digit."""
    name = re.sub(r"[^a-z0-9_-]", "-", f"{WORKER_PREFIX}{tenant}".lower())[:63]
    return name.rstrip("-_") or WORKER_PREFIX.rstrip("-")
