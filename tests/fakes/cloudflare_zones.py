"""Zones, Email Routing and Worker uploads: the account-side half of FakeCloudflare (tests/fakes/cloudflare.py).

- the permission group names tokens carry (``PERMISSIONS``), ``Token`` and ``Zone``;
- ``ZonesApi``, a mixin with the handlers of ``GET /zones``, ``GET /zones/{zone_id}/email/routing``, the routing
  rules and catch-all, and ``PUT /accounts/{account_id}/workers/scripts/{script_name}``. FakeCloudflare routes to
  them after authenticating the call and checking its permission, and turns ``CloudflareError`` into the envelope.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from tests.fakes.cloudflare_email import CloudflareError, envelope

ZONE_READ = "Zone Read"
ZONE_SETTINGS_READ = "Zone Settings Read"  # what GET .../email/routing accepts, per Cloudflare's API reference
ZONE_SETTINGS_EDIT = "Zone Settings Edit"
EMAIL_ROUTING_RULES_READ = "Email Routing Rules Read"
EMAIL_ROUTING_RULES_EDIT = "Email Routing Rules Edit"
WORKERS_SCRIPTS_EDIT = "Workers Scripts Edit"
EMAIL_SENDING_EDIT = "Email Sending Edit"
PERMISSIONS = (ZONE_READ, ZONE_SETTINGS_READ, ZONE_SETTINGS_EDIT, EMAIL_ROUTING_RULES_READ, EMAIL_ROUTING_RULES_EDIT,
               WORKERS_SCRIPTS_EDIT, EMAIL_SENDING_EDIT)
ALL_PERMISSIONS = frozenset(PERMISSIONS)
RULES_READ = (EMAIL_ROUTING_RULES_READ, EMAIL_ROUTING_RULES_EDIT)
ROUTING_ERROR_CODE = 2020  # our choice: Cloudflare does not document Email Routing's error codes
CATCH_ALL_PRIORITY = 2147483647  # how the rules list shows the catch-all (seen in cf-terraforming's test data)

AUTH_ERROR = (403, 10000, "Authentication error")
_SCRIPT_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$")
_MODULE_TYPES = {"application/javascript+module", "text/javascript"}
_HANDLERS = ("fetch", "email", "scheduled", "queue", "tail")


@dataclass
class Token:
    value: str
    id: str
    permissions: frozenset[str]
    account_id: str
    account_owned: bool  # verified at /accounts/{id}/tokens/verify, not /user/tokens/verify


@dataclass
class Zone:
    id: str
    name: str
    account_id: str
    routing_enabled: bool = True
    routing_status: str = "ready"  # ready, unconfigured, misconfigured, misconfigured/locked, unlocked
    sending_onboarded: bool = True  # the domain is set up for Email Sending (from addresses may use it)
    sending_enabled: bool = True  # False: sends answer 10203 sending_disabled
    routing_id: str = field(default_factory=lambda: uuid.uuid4().hex)


class ZonesApi:
    """The zone, Email Routing and Workers handlers of FakeCloudflare (a mixin over the state it keeps)."""

    zones: dict[str, Zone]
    rules: dict[str, list[dict[str, Any]]]
    catch_all: dict[str, dict[str, Any]]
    scripts: dict[str, dict[str, Any]]
    verified_destinations: set[str]

    def _zone(self, request: Request, token: Token) -> Zone:
        zone = self.zones.get(request.path_params["zone_id"])
        if zone is None:
            raise CloudflareError(400, 7003, f"Could not route to {request.url.path}, perhaps your object "
                                             "identifier is invalid?")
        if zone.account_id != token.account_id:
            raise CloudflareError(*AUTH_ERROR)
        return zone

    def _account(self, request: Request, token: Token) -> str:
        account_id = request.path_params["account_id"]
        if account_id != token.account_id:
            raise CloudflareError(*AUTH_ERROR)
        return account_id

    # -- zones and Email Routing -----------------------------------------------------------------

    async def _zones(self, request: Request, token: Token) -> Response:
        query = request.query_params
        name, account_id = query.get("name"), query.get("account.id")
        found = [z for z in self.zones.values() if z.account_id == token.account_id
                 and (name is None or z.name == name.lower()) and (account_id is None or z.account_id == account_id)]
        return envelope([{"id": z.id, "name": z.name, "status": "active", "paused": False, "type": "full",
                          "account": {"id": z.account_id, "name": "Acme"}} for z in found], paged=True)

    async def _routing(self, request: Request, token: Token) -> Response:
        zone = self._zone(request, token)
        return envelope({"id": zone.routing_id, "tag": zone.routing_id, "name": zone.name,
                         "enabled": zone.routing_enabled, "status": zone.routing_status, "skip_wizard": True,
                         "created": "2026-01-05T10:00:00.000000Z", "modified": _now()})

    async def _list_rules(self, request: Request, token: Token) -> Response:
        zone = self._zone(request, token)
        # Cloudflare lists the catch-all among the rules, last, with the highest priority number.
        catch_all = {**self.catch_all[zone.id], "priority": CATCH_ALL_PRIORITY}
        return envelope([*self.rules[zone.id], catch_all], paged=True)

    async def _get_rule(self, request: Request, token: Token) -> Response:
        return envelope(self._find_rule(self._zone(request, token), request.path_params["rule_id"]))

    async def _delete_rule(self, request: Request, token: Token) -> Response:
        zone = self._zone(request, token)
        rule = self._find_rule(zone, request.path_params["rule_id"])
        self.rules[zone.id].remove(rule)
        return envelope(rule)

    async def _create_rule(self, request: Request, token: Token) -> Response:
        zone = self._zone(request, token)
        body = await _json_object(request)
        matchers, actions = body.get("matchers"), body.get("actions")
        self._check_actions(actions, token)
        if not isinstance(matchers, list) or not matchers:
            raise _routing_error("matchers must be a non-empty list")
        for matcher in matchers:
            if not isinstance(matcher, dict) or matcher.get("type") != "literal" or matcher.get("field") != "to":
                raise _routing_error("a rule matches with {type: literal, field: to, value}; "
                                     "match everything through rules/catch_all")
            value = str(matcher.get("value") or "")
            local, _, domain = value.rpartition("@")
            if not local or domain.lower() != zone.name:
                raise _routing_error(f"'{value}' is not an address on {zone.name}")
            if any(_literal(rule) == value.lower() for rule in self.rules[zone.id]):
                raise _routing_error("Rule with the same matcher already exists")
        rule_id = uuid.uuid4().hex
        rule = {"id": rule_id, "tag": rule_id, "name": str(body.get("name") or ""),
                "enabled": bool(body.get("enabled", True)), "priority": int(body.get("priority") or 0),
                "matchers": matchers, "actions": actions}
        self.rules[zone.id].append(rule)
        return envelope(rule)

    async def _get_catch_all(self, request: Request, token: Token) -> Response:
        return envelope(self.catch_all[self._zone(request, token).id])

    async def _put_catch_all(self, request: Request, token: Token) -> Response:
        zone = self._zone(request, token)
        body = await _json_object(request)
        self._check_actions(body.get("actions"), token)
        if body.get("matchers") != [{"type": "all"}]:
            raise _routing_error('the catch-all matches with [{"type": "all"}]')
        rule = self.catch_all[zone.id]
        rule.update(actions=body["actions"], matchers=body["matchers"], enabled=bool(body.get("enabled", True)),
                    name=str(body.get("name") or rule["name"]))
        return envelope(rule)

    def _find_rule(self, zone: Zone, rule_id: str) -> dict[str, Any]:
        rule = next((r for r in self.rules[zone.id] if r["id"] == rule_id), None)
        if rule is None:
            raise CloudflareError(404, ROUTING_ERROR_CODE, "Rule not found")
        return rule

    def _check_actions(self, actions: Any, token: Token) -> None:
        if not isinstance(actions, list) or not actions:
            raise _routing_error("actions must be a non-empty list")
        for action in actions:
            kind = action.get("type") if isinstance(action, dict) else None
            values = action.get("value") if isinstance(action, dict) else None
            if kind not in ("drop", "forward", "worker"):
                raise _routing_error(f"action type must be drop, forward or worker, not {kind!r}")
            if kind == "drop":
                continue
            if not isinstance(values, list) or not values:
                raise _routing_error(f"a {kind} action needs a value list")
            if kind == "worker" and (len(values) != 1 or values[0] not in self.scripts
                                     or self.scripts[values[0]]["account_id"] != token.account_id):
                raise _routing_error(f"Worker {values!r} does not exist in this account")
            if kind == "forward" and not set(values) <= self.verified_destinations:
                raise _routing_error("forward actions need verified destination addresses")

    # -- Workers ---------------------------------------------------------------------------------

    async def _upload_script(self, request: Request, token: Token) -> Response:
        account_id = self._account(request, token)
        name = request.path_params["script_name"]
        if not _SCRIPT_NAME.match(name):
            raise CloudflareError(400, 10016, "Invalid Worker name: use lowercase letters, digits, - and _")
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise _script_error("Expected a multipart/form-data upload with a metadata part")
        form = await request.form()
        metadata_part = form.get("metadata")
        if metadata_part is None:
            raise _script_error("could not read content for part metadata")
        try:
            raw = await metadata_part.read() if isinstance(metadata_part, UploadFile) else metadata_part
            metadata = json.loads(raw)
        except ValueError as exc:
            raise _script_error("metadata is not valid JSON") from exc
        main = metadata.get("main_module") if isinstance(metadata, dict) else None
        module = form.get(main) if isinstance(main, str) else None
        if not isinstance(module, UploadFile):
            raise _script_error("Uncaught TypeError: Main module name is not present in bundle.")
        module_type = (module.content_type or "").split(";")[0].strip()
        if module_type not in _MODULE_TYPES:
            raise _script_error(f"main module {main!r} must be sent as application/javascript+module, "
                                f"not {module_type or 'no content type'}")
        bindings = _bindings(metadata.get("bindings", []))
        source = (await module.read()).decode()
        now = _now()
        created = self.scripts.get(name, {}).get("created_on", now)
        etag = hashlib.sha256(source.encode()).hexdigest()
        handlers = [h for h in _HANDLERS if re.search(rf"\b{h}\s*\(", source)]
        self.scripts[name] = {"source": source, "metadata": metadata, "bindings": bindings, "account_id": account_id,
                              "etag": etag, "created_on": created, "modified_on": now}
        return envelope({"id": name, "etag": etag, "created_on": created, "modified_on": now, "handlers": handlers,
                         "has_modules": True, "usage_model": "standard",
                         "compatibility_date": metadata.get("compatibility_date", "")})


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _literal(rule: dict[str, Any]) -> str | None:
    return next((str(m.get("value", "")).lower() for m in rule["matchers"] if m.get("type") == "literal"), None)


def _routing_error(message: str) -> CloudflareError:
    return CloudflareError(400, ROUTING_ERROR_CODE, message)


def _script_error(message: str) -> CloudflareError:
    return CloudflareError(400, 10021, message)  # Cloudflare's code for an upload it cannot use


def _bindings(raw: Any) -> dict[str, str]:
    """name -> text of the secret_text and plain_text bindings (the only kinds the channel's Worker uses)."""
    if not isinstance(raw, list):
        raise _script_error("metadata.bindings must be a list")
    found: dict[str, str] = {}
    for binding in raw:
        if not isinstance(binding, dict) or not binding.get("name"):
            raise _script_error(f"binding {binding!r} needs a type and a name")
        if binding.get("type") in ("secret_text", "plain_text"):
            if not isinstance(binding.get("text"), str):
                raise _script_error(f"binding {binding['name']!r} needs a text")
            found[binding["name"]] = binding["text"]
    return found


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError as exc:
        raise CloudflareError(400, 10026, "Malformed JSON in request body") from exc
    if not isinstance(body, dict):
        raise CloudflareError(400, 10026, "the request body must be a JSON object")
    return body

