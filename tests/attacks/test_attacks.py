"""Attack suites as data (issue 15): every registered channel's corpus, fired at the real server.

- ``test_every_channel_has_a_corpus``: each kind of ``channels.REGISTRY`` has ``tests/attacks/<kind>/`` with
  at least 200 well-formed entries covering every required category (or saying why one cannot apply),
  each expecting a refusal the OpenAPI document declares, and a kit to arm it. Adding a channel without
  its corpus fails here.
- ``test_every_attack_is_refused``: the kind is armed (connected, behind a catch-all, a genuine request
  answered, its key rotated), then its corpus is sent; every request must get the status (and error
  code) its entry expects, that status must be declared for the operation in the live /v1/openapi.json,
  and nothing may change: no row in any table, no call to any fake provider.
- ``test_known_product_finding``: entries marked ``finding`` (a product bug found by the corpus, README.md)
  are sent after that check and expected to fail, strictly: the day the product is fixed, the XPASS
  says to remove the mark.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from app.api import build_api
from channels import REGISTRY
from tests.attacks import corpus
from tests.attacks.conftest import AttackServer
from tests.attacks.corpus import Attack, Context, CorpusError
from tests.attacks.kit_registry import KITS
from tests.attacks.kits import Kit, admin_client
from tests.attacks.wire import Answer

KINDS = sorted(REGISTRY)
OPERATION = "/v1/{kind}/webhook/{tenant}"
CONCURRENCY = 16
QUIET_S = 0.8  # a server is settled when rows and fake calls have not moved for this long
SETTLE_LIMIT_S = 30.0


def declared_statuses(document: dict[str, Any]) -> dict[str, set[int]]:
    """Method -> the statuses the OpenAPI document declares for the webhook operation."""
    return {method.upper(): {int(status) for status in operation["responses"]}
            for method, operation in document["paths"][OPERATION].items()}


def error_code(answer: Answer) -> str | None:
    try:
        return str(json.loads(answer.body)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


Snapshot = tuple[dict[str, int], dict[str, int]]


@dataclass
class Volley:
    """One kind's corpus fired at one server, and what the server did."""

    kind: str
    database: str
    checked: list[Attack]  # sent first, under the no-row, no-call check
    flagged: list[Attack]  # known findings on this database, sent afterwards
    answers: dict[str, Answer] = field(default_factory=dict)
    declared: dict[str, set[int]] = field(default_factory=dict)
    # (rows per table, calls per fake) before and after each batch of checked entries
    windows: list[tuple[Snapshot, Snapshot]] = field(default_factory=list)
    seconds: float = 0.0  # sending the checked entries
    new_key_after: float = 0.0  # from the rotation until every process accepted the new key


async def _settle(server: AttackServer) -> Snapshot:
    """Rows and provider calls once they stop moving (workers and the outbox finished what they had)."""
    deadline = time.monotonic() + SETTLE_LIMIT_S
    last = (await asyncio.to_thread(server.rows), server.outbound())
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < QUIET_S and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        now = (await asyncio.to_thread(server.rows), server.outbound())
        if now != last:
            last, quiet_since = now, time.monotonic()
    return last


async def _fire(kit: Kit, attacks: list[Attack], context: Context) -> dict[str, Answer]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(attack: Attack) -> tuple[str, Answer]:
        async with gate:
            try:
                return attack.id, await kit.send(attack, context)
            except Exception as exc:  # reported with its entry, rather than failing every entry
                return attack.id, Answer(0, note=f"could not send: {exc!r}")

    return dict(await asyncio.gather(*(one(a) for a in attacks)))


async def _checked(volley: Volley, server: AttackServer, kit: Kit, attacks: list[Attack], context: Context) -> None:
    """Send ``attacks`` between two snapshots of every table's row count and every fake's call count."""
    before = await _settle(server)
    started = time.monotonic()
    volley.answers.update(await _fire(kit, attacks, context))
    volley.seconds += time.monotonic() - started
    after = await _settle(server)
    volley.windows.append((before, after))


async def _volley(server: AttackServer, kind: str) -> Volley:
    attacks = corpus.load(kind)
    volley = Volley(kind, server.database, [a for a in attacks if not a.finding(server.database)],
                    [a for a in attacks if a.finding(server.database)])
    async with admin_client(server) as api:
        volley.declared = declared_statuses((await api.get("/v1/openapi.json")).json())
        kit = KITS[kind](server, api)
        context = await kit.arm()
        # Replays first, while a server process may still hold the channel with the old key (it must
        # refuse them all the same: the receiver verifies again inside its transaction)...
        replays = [a for a in volley.checked if a.category == "replay"]
        await _checked(volley, server, kit, replays, context)
        volley.new_key_after = await kit.await_new_key(context)
        # ...the rest once every process accepts the new key (a request signed with it, body malformed,
        # must get its 400, not a stale process's 401).
        await _checked(volley, server, kit, [a for a in volley.checked if a.category != "replay"], context)
        volley.answers.update(await _fire(kit, volley.flagged, context))
        await _settle(server)  # what a finding let through is done before the next kind is armed
    return volley


_VOLLEYS: dict[tuple[str, str], Volley] = {}  # (server url, kind) -> its volley, fired once


@pytest.fixture
def volley(request: pytest.FixtureRequest, attack_server: AttackServer) -> Volley:
    """The kind's volley on this server. Cached here rather than by a session-scoped fixture: pytest keeps
    one value of a parametrized fixture at a time, and the finding tests revisit kinds."""
    key = (attack_server.url, request.param)
    if key not in _VOLLEYS:
        _VOLLEYS[key] = asyncio.run(_volley(attack_server, request.param))
    return _VOLLEYS[key]


def _problems(volley: Volley, attacks: list[Attack]) -> list[str]:
    problems = []
    for attack in attacks:
        answer = volley.answers[attack.id]
        got = (answer.status, error_code(answer) if attack.code is not None else None)
        if got != (attack.status, attack.code):
            problems.append(f"{attack.id} ({attack.spec['note']}): expected {attack.status} {attack.code or ''}, got "
                            f"{answer.status} {answer.body[:160]!r} {answer.note}")
        if attack.status not in volley.declared.get(attack.method, set()):
            problems.append(f"{attack.id}: {attack.status} is not declared for {attack.method} {OPERATION}")
        challenge = dict(attack.spec.get("query", [])).get("hub.challenge")
        if challenge and challenge.encode() in answer.body:
            problems.append(f"{attack.id}: a refused handshake echoed its challenge")
    return problems


@pytest.mark.integration
@pytest.mark.parametrize("volley", KINDS, indirect=True)
def test_every_attack_is_refused(volley: Volley) -> None:
    statuses = Counter(volley.answers[a.id].status for a in volley.checked)
    flagged = Counter(volley.answers[a.id].status for a in volley.flagged)
    print(f"\nattacks {volley.kind} [{volley.database}]: {len(volley.checked) + len(volley.flagged)} requests; "
          f"{len(volley.checked)} checked in {volley.seconds:.1f} s, answered "
          + ", ".join(f"{status}×{n}" for status, n in statuses.most_common())
          + f"; {len(volley.flagged)} known findings, answered "
          + (", ".join(f"{status}×{n}" for status, n in flagged.most_common()) or "-")
          + f"; the rotated key was accepted everywhere {volley.new_key_after:.1f} s after the rotation")
    problems = _problems(volley, volley.checked)
    for status in (401, 403):  # unknown tenant, unknown integration and a bad signature answer alike
        bodies = {volley.answers[a.id].body for a in volley.checked if volley.answers[a.id].status == status}
        if len(bodies) > 1:
            problems.append(f"the {status} answers differ (something to enumerate): {sorted(bodies)[:3]}")
    for (rows_before, calls_before), (rows_after, calls_after) in volley.windows:
        if rows_after != rows_before:
            written = {t: (rows_before.get(t), n) for t, n in rows_after.items() if rows_before.get(t) != n}
            problems.append(f"rows were written (table: before, after): {written}")
        if calls_after != calls_before:
            problems.append(f"fake providers were called (before, after): {calls_before}, {calls_after}")
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


def _flagged() -> list[Any]:
    found = []
    for kind in KINDS:
        try:
            attacks = corpus.load(kind)
        except CorpusError:
            continue  # test_every_channel_has_a_corpus says what is wrong
        found += [pytest.param(kind, a.id, id=f"{kind}-{a.id}") for a in attacks if a.findings]
    return found


@pytest.mark.integration
@pytest.mark.parametrize(("volley", "attack_id"), _flagged(), indirect=["volley"])
def test_known_product_finding(volley: Volley, attack_id: str, request: pytest.FixtureRequest) -> None:
    attack = next(a for a in volley.checked + volley.flagged if a.id == attack_id)
    reason = attack.finding(volley.database)
    if reason is None:
        pytest.skip(f"not a finding on {volley.database}: checked with the rest of the corpus")
    request.applymarker(pytest.mark.xfail(strict=True, reason=reason))
    assert not _problems(volley, [attack])


DOCUMENT = build_api().openapi()


@pytest.mark.parametrize("kind", KINDS)
def test_every_channel_has_a_corpus(kind: str) -> None:
    assert kind in KITS, f"{kind} has no kit in tests/attacks/kit_registry.py (how to connect and sign it)"
    attacks = corpus.load(kind)  # CorpusError names the file, line and field
    assert len(attacks) >= corpus.MIN_ENTRIES, f"{kind}: {len(attacks)} attacks, fewer than {corpus.MIN_ENTRIES}"
    covered = Counter(a.category for a in attacks)
    reasons = corpus.not_applicable(kind)
    missing = [c for c in corpus.REQUIRED_CATEGORIES if not covered[c] and not reasons.get(c)]
    assert not missing, f"{kind}: no attack in {missing} and no reason in not_applicable.json"
    both = [c for c in reasons if covered[c] or c not in corpus.REQUIRED_CATEGORIES]
    assert not both, f"{kind}: not_applicable.json names categories it covers, or that are not required: {both}"
    declared = declared_statuses(DOCUMENT)
    undeclared = [a.id for a in attacks if a.status not in declared[a.method]]
    assert not undeclared, f"{kind}: expected statuses the OpenAPI document does not declare: {undeclared}"
    sample = Context(KITS[kind].sample_keys, "default", corpus.Captured("POST", "/", [], b"{}"), int(time.time()))
    for attack in attacks:  # every recipe, key and mutation can be evaluated (RecipeError names the problem)
        corpus.materialize(attack, sample)
    own = f"/v1/{kind}/webhook/"
    elsewhere = [a.id for a in attacks if not str(a.spec["path"]).startswith(own) and a.category != "unknown_kind"]
    assert not elsewhere, f"{kind}: attacks aimed at another channel's webhook: {elsewhere}"
