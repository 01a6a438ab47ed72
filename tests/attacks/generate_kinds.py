"""Each kind's own attacks, beside the shared ones of generate.py: how its signature is carried, replayed
and swapped, its handshake, and bodies shaped like its payloads. Bodies are fixed (no clock, no random):
the generator rewrites the same bytes every time."""

from __future__ import annotations

from urllib.parse import urlencode

from tests.attacks.generate import FORM_TYPE, Corpus, Profile, common, dumps, malformed, replays_with_previous_key
from tests.fakes import slack as sl
from tests.fakes import whatsapp as wa

DATE = 1767225600  # 2026-01-01, a fixed "captured earlier" time inside bodies


# -- telegram ---------------------------------------------------------------------------------------

def tg_update(serial: int, text: str = "hello", **extra: object) -> str:
    person = {"id": 7_100_000 + serial, "is_bot": False, "first_name": "Mallory", "language_code": "en"}
    message = {"message_id": 10 + serial, "date": DATE, "from": person,
               "chat": {"id": person["id"], "first_name": "Mallory", "type": "private"}, "text": text}
    return dumps({"update_id": 900_000 + serial, "message": message, **extra})


def tg_callback(serial: int, data: str) -> str:
    person = {"id": 7_100_000 + serial, "is_bot": False, "first_name": "Mallory"}
    return dumps({"update_id": 900_000 + serial, "callback_query": {
        "id": f"q{serial}", "chat_instance": "-81234567890", "from": person, "data": data,
        "message": {"message_id": 12, "date": DATE, "text": "Approve?",
                    "chat": {"id": person["id"], "type": "private"}}}})


def telegram() -> Corpus:
    c = Corpus(Profile("telegram", "telegram_secret_token", tg_update, body_bound=False, key_length=43, not_applicable={
        "stale_signature": "Telegram's secret token carries no time, so nothing can be stale; a request captured "
                           "earlier is refused once the secret has rotated (category replay).",
        "body_swap": "The secret token authenticates the sender, not the body: whoever holds it may send any "
                     "body, so a body under a valid header is a genuine request, not a forgery. Bodies that are "
                     "not Telegram updates, under a valid header, are in malformed_json, malformed_form and "
                     "malformed_mime."}))
    c.add("missing_signature", "no secret token header")
    c.add("missing_signature", "an empty secret token header", sign=c.sign(mutate=["empty"]))
    for header in ("X-Telegram-Bot-Api-Secret", "X-Telegram-Bot-Api-Secret-Tokens", "X-Telegram-Secret-Token",
                   "X-Telegram-Bot-Api-Secret_Token", "Secret-Token", "X-Bot-Api-Secret-Token"):
        c.add("missing_signature", f"the genuine secret under another header name ({header})",
              sign=c.sign(header=header))
    c.add("missing_signature", "the genuine secret in the query string", sign=c.sign(placement="query"))
    c.add("missing_signature", "the genuine secret as a bearer token", sign=c.sign(placement="bearer"))
    c.add("forged_signature", "the bot token as the secret", sign=c.sign(key="bot_token"))
    c.add("forged_signature", "the bot's numeric id as the secret", sign=c.sign(key="literal:123456789"))
    c.add("forged_signature", "a Slack-style signature instead of the secret",
          sign={"recipe": "slack_v0", "key": "current"})
    c.add("forged_signature", "a Meta-style body signature keyed with the secret",
          sign={"recipe": "meta_sha256", "key": "current"})
    for steps, note in ((["double"], "the secret twice"), (["reverse"], "the secret reversed"),
                        (["b64"], "the secret base64-encoded"), (["hex"], "the secret hex-encoded"),
                        (["sha256hex"], "the secret's SHA-256"), (["prepend:Bearer "], "'Bearer ' + the secret"),
                        (["prepend:\"", "append:\""], "the secret in quotes"), (["append:=="], "the secret + '=='"),
                        (["insert_at:20: "], "a space inside the secret"),
                        (["append:\u00e9"], "a Latin-1 byte appended"),
                        (["set_at:10:\u00e9"], "a Latin-1 byte in place of character 10"),
                        (["truncate:20", "append:%"], "half the secret, then a percent sign")):
        c.add("tampered_signature", note, sign=c.sign(mutate=steps))
    for n in (1, 4, 8, 16, 21, 32, 40, 42, -1, -2):
        c.add("truncated_signature", f"the secret header cut to [:{n}]", sign=c.sign(mutate=[f"truncate:{n}"]))
    for n in (1, 10, 42):
        c.add("truncated_signature", f"the secret header without its first {n} characters",
              sign=c.sign(mutate=[f"drop_first:{n}"]))
    replays_with_previous_key(c, [
        (tg_update(500 + i, text), f"a captured message {text!r}") for i, text in enumerate(
            ("hello", "/start Xq3_kP9vL2mN8rT-wY5zB7cD1fG4hJ6s", "/start", "please pay the invoice", "YES", "NO"))]
        + [(tg_callback(520 + i, data), f"a captured button press {data!r}")
           for i, data in enumerate(("a:cb_5Jk2LmN8pQ4rS7tV", "r:cb_5Jk2LmN8pQ4rS7tV", "e:cb_5Jk2LmN8pQ4rS7tV"))]
        + [(tg_update(530, "edited", edited_message={"message_id": 1, "date": DATE, "text": "x",
                                                      "chat": {"id": 1, "type": "private"}}), "a captured edit")])
    c.add("replay", "a captured message resent with the bot token in place of the rotated secret",
          body=tg_update(540), sign=c.sign(key="bot_token"))
    malformed(c, [
        ("{}", "no update_id"), ('{"update_id":"1"}', "update_id as a string"),
        ('{"update_id":1.5}', "update_id as a float"), ('{"update_id":null}', "update_id null"),
        ('{"update_id":[1]}', "update_id as a list"), ('{"update_id":' + "9" * 5000 + "}", "a 5000-digit update_id"),
        ('{"update_id":1,"message":"hello"}', "message as a string"),
        ('{"update_id":1,"message":[1,2]}', "message as a list"),
        ('{"update_id":1,"callback_query":"tap"}', "callback_query as a string")])
    for headers, note in (([], "a GET without the secret"),
                          ([["X-Telegram-Bot-Api-Secret-Token", "guess"]], "a GET with a guessed secret")):
        c.add("handshake", f"{note}: Telegram never sends GETs, refused as a failed handshake", method="GET",
              expect=403, headers=headers)
    c.add("handshake", "a GET with the secret before the rotation", method="GET", expect=403,
          sign=c.sign(key="previous"))
    c.add("handshake", "a GET to an unknown tenant", method="GET", expect=403,
          path=c.path.replace("{tenant}", "nobody"), sign=c.sign())
    common(c)
    return c


# -- slack ------------------------------------------------------------------------------------------

def sl_envelope(serial: int, text: str = "hello", *, user: str = sl.INSTALLER_ID, channel: str = sl.DM_CHANNEL_ID,
                team: str = sl.TEAM_ID, event_type: str = "message") -> str:
    ts = f"{DATE}.{serial:06d}"
    event = {"user": user, "type": event_type, "ts": ts, "client_msg_id": f"00000000-0000-4000-8000-{serial:012d}",
             "text": text, "team": team, "channel": channel, "event_ts": ts,
             "channel_type": "im" if channel.startswith("D") else "channel"}
    return dumps({"token": sl.VERIFICATION_TOKEN, "team_id": team, "api_app_id": sl.APP_ID, "event": event,
                  "type": "event_callback", "event_id": f"EvATK{serial:06d}", "event_time": DATE,
                  "authorizations": [{"team_id": team, "user_id": sl.BOT_USER_ID, "is_bot": True}]})


def sl_action(serial: int, value: str = "a:cb_5Jk2LmN8pQ4rS7tV", **extra: object) -> dict[str, object]:
    return {"type": "block_actions", "user": {"id": sl.INSTALLER_ID, "username": "dana", "team_id": sl.TEAM_ID},
            "team": {"id": sl.TEAM_ID}, "api_app_id": sl.APP_ID, "trigger_id": f"{serial}.1.abc",
            "container": {"type": "message", "message_ts": f"{DATE}.{serial:06d}", "channel_id": sl.DM_CHANNEL_ID},
            "channel": {"id": sl.DM_CHANNEL_ID}, "message": {"ts": f"{DATE}.{serial:06d}", "text": "Approval needed"},
            "actions": [{"action_id": "ic_approve", "value": value, "type": "button",
                         "action_ts": f"{DATE}.9{serial:05d}"}],
            **extra}


def form(payload: object) -> str:
    return urlencode({"payload": dumps(payload)})


def slack() -> Corpus:
    c = Corpus(Profile("slack", "slack_v0", sl_envelope, text_only_bodies=True))
    tap = form(sl_action(1))
    c.add("missing_signature", "no signature headers")
    c.add("missing_signature", "a timestamp but no signature", sign=c.sign(omit_signature=True))
    c.add("missing_signature", "a signature but no timestamp", sign=c.sign(omit_timestamp=True))
    c.add("missing_signature", "an empty signature", sign=c.sign(mutate=["empty"]))
    c.add("missing_signature", "an empty timestamp", sign=c.sign(timestamp_header=""))
    c.add("missing_signature", "the signature under another header name", sign=c.sign(header="X-Slack-Signature-256"))
    c.add("missing_signature", "an interaction with no signature headers", body=tap, content_type=FORM_TYPE)
    c.add("missing_signature", "only the deprecated verification token in the body, no signature", body=sl_envelope(2))
    c.add("forged_signature", "the client secret as the signing key", sign=c.sign(key="client_secret"))
    c.add("forged_signature", "an interaction signed with the client secret", body=tap, content_type=FORM_TYPE,
          sign=c.sign(key="client_secret"))
    for template in ("{ts}:{body}", "{version}:{ts}{body}", "{version}:{body}", "{body}", "{version}:{ts}:{body}\n",
                     "{version}:{body}:{ts}", "{ts}"):
        c.add("forged_signature", f"HMAC over the wrong base string {template!r}", sign=c.sign(basestring=template))
    c.add("forged_signature", "version v1 in the base string and header", sign=c.sign(version="v1"))
    for digest in ("sha1", "md5", "sha512"):
        c.add("forged_signature", f"HMAC-{digest.upper()} in place of SHA-256", sign=c.sign(digest=digest))
    for challenge in ("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "<script>alert(1)</script>"):
        c.add("forged_signature", "a forged url_verification: must not echo the challenge",
              body=dumps({"token": "x", "challenge": challenge, "type": "url_verification"}),
              sign=c.sign(key="literal:forged"))
    c.add("forged_signature", "Telegram's secret header with the signing secret",
          sign={"recipe": "telegram_secret_token"})
    c.add("forged_signature", "Meta's body signature keyed with the signing secret", sign={"recipe": "meta_sha256"})
    # Past the window by at least a second, ahead of it by at least 5 s: the server reads its clock a moment
    # after the recipe read the same clock, so "301 s ahead" could be 300 s ahead by then.
    for offset in (-301, -302, -310, -360, -600, -3600, -86400, -604800, -31536000, 305, 310, 360, 3600, 86400):
        c.add("stale_signature", f"correctly signed at now{offset:+d} s: outside Slack's 5 minutes",
              sign=c.sign(timestamp=offset))
    for offset in (-301, -900, -86400, 305, 900, 86400):
        c.add("stale_signature", f"an interaction signed at now{offset:+d} s", body=tap, content_type=FORM_TYPE,
              sign=c.sign(timestamp=offset))
    for literal in ("0", "1", "9999999999", "99999999999999999999", "01767225600"):
        c.add("stale_signature", f"signed over the timestamp {literal!r}", sign=c.sign(timestamp_literal=literal))
    tampers = [(["replace_at:3"], "the first hex digit changed"), (["replace_at:-1"], "the last hex digit changed"),
               *(([f"replace_at:{i}"], f"hex digit {i} changed") for i in (10, 20, 30, 40, 50, 60)),
               (["upper"], "upper-cased"), (["upper_from:3"], "hex digits upper-cased"),
               (["replace:v0=:v1="], "labelled v1"), (["replace:v0=:V0="], "labelled V0"),
               (["replace:v0=:v0:"], "v0: instead of v0="), (["replace:v0=:"], "without its v0= label"),
               (["replace:v0=:sha256="], "labelled sha256="), (["double"], "twice"), (["append:0"], "a digit appended"),
               (["insert_at:20: "], "a space inside"), (["prepend:v0=", "truncate:67"], "v0=v0=…")]
    for steps, note in tampers:
        c.add("tampered_signature", f"the signature {note}", sign=c.sign(mutate=steps))
    for delta in (1, -1, 60):
        c.add("tampered_signature", f"the timestamp header moved {delta:+d} s from the signed one",
              sign=c.sign(timestamp_header_delta=delta))
    for value in ("soon", "-300", "1.7e9", "0x65", "+1767225600", "1767225600 0"):
        c.add("tampered_signature", f"the timestamp header {value!r}", sign=c.sign(timestamp_header=value))
    for literal in ("\u00b2", "176722560\u00b9"):
        c.add("tampered_signature", f"the timestamp {literal!r}", sign=c.sign(timestamp_literal=literal))
    c.add("tampered_signature", "a Latin-1 byte inside the signature", sign=c.sign(mutate=["set_at:10:\u00e9"]))
    c.add("tampered_signature", "a Latin-1 byte appended to the signature", sign=c.sign(mutate=["append:\u00fc"]))
    for n in (3, 4, 10, 20, 35, 50, 60, -1, -2):
        c.add("truncated_signature", f"the signature cut to [:{n}]", sign=c.sign(mutate=[f"truncate:{n}"]))
    c.add("truncated_signature", "an interaction's signature cut by one", body=tap, content_type=FORM_TYPE,
          sign=c.sign(mutate=["truncate:-1"]))
    bodies = [(sl_envelope(500 + i, text), f"a captured message {text!r}") for i, text in
              enumerate(("hello", "please pay the invoice", "YES"))]
    bodies += [(form(sl_action(510 + i, value)), f"a captured tap {value!r}") for i, value in
               enumerate(("a:cb_5Jk2LmN8pQ4rS7tV", "r:cb_5Jk2LmN8pQ4rS7tV"))]
    replays_with_previous_key(c, bodies)
    c.add("replay", "the captured request signed again with the previous key, fresh timestamp",
          body_from="captured", sign=c.sign(key="previous"))
    for offset in (-301, -3600):
        c.add("replay", f"the captured body replayed {-offset} s later with the current key", body_from="captured",
              sign=c.sign(timestamp=offset))
    for i, offset in enumerate((-301, -600, -3600, -86400)):
        c.add("replay", f"signed {-offset} s ago, resent with the timestamp header refreshed to now",
              body=sl_envelope(540 + i), sign=c.sign(timestamp=offset, timestamp_header_delta=-offset))
        c.add("replay", f"a tap signed {-offset} s ago, replayed as it was", body=form(sl_action(550 + i)),
              content_type=FORM_TYPE, sign=c.sign(timestamp=offset))
    original = sl_envelope(600, "hello")
    swaps = [(sl_envelope(600, "transfer the money"), "the text changed"),
             (sl_envelope(601, "hello"), "the event id changed"),
             (sl_envelope(600, user=sl.OTHER_USER_ID), "the sender changed"),
             (sl_envelope(600, channel=sl.GENERAL_CHANNEL_ID), "the channel changed"),
             (sl_envelope(600, team="T0OTHER"), "the workspace changed"),
             (sl_envelope(600, event_type="app_mention"), "the event type changed"),
             (original + " ", "a space appended"), (original + "\n", "a newline appended"),
             (original.replace(",", ", "), "re-serialised with spaces"), (original[:-1], "the last byte dropped"),
             (original + original, "the body twice"), ("", "an empty body"),
             (dumps({"token": "x", "challenge": "c", "type": "url_verification"}), "a url_verification")]
    for body, note in swaps:
        c.add("body_swap", f"a valid signature of a message, sent over a body with {note}", body=body,
              sign=c.sign(signed_body=original))
    for body, note in ((form(sl_action(610, "r:cb_5Jk2LmN8pQ4rS7tV")), "reject in place of approve"),
                       (form(sl_action(610, "a:cb_OTHERtoken00000000")), "another approval's token"),
                       (form(sl_action(610)).replace("%2C", ","), "commas unescaped"),
                       (form(sl_action(610)) + "&x=1", "a field appended"), (original, "an event in place of the tap")):
        c.add("body_swap", f"a valid signature of a tap, sent over {note}", body=body, content_type=FORM_TYPE,
              sign=c.sign(signed_body=form(sl_action(610))))
    malformed(c, [
        ("{}", "no type"), ('{"type":1}', "type as a number"), ('{"type":null}', "type null"),
        ('{"type":["event_callback"]}', "type as a list"),
        ('{"type":"event_callback"}', "an event_callback without its event"),
        ('{"type":"event_callback","event":"message","team_id":"T0TEAM","event_id":"Ev1"}', "event as a string"),
        ('{"type":"event_callback","event":{},"team_id":1,"event_id":"Ev1"}', "team_id as a number"),
        ('{"type":"event_callback","event":{"type":"message"},"team_id":"T0TEAM"}', "no event_id")])
    slack_forms(c)
    c.add("handshake", "a GET without signature headers", method="GET", expect=403)
    c.add("handshake", "a GET with a forged signature", method="GET", expect=403, sign=c.sign(key="literal:forged"))
    c.add("handshake", "a GET signed with the previous key", method="GET", expect=403, sign=c.sign(key="previous"))
    c.add("handshake", "a GET to an unknown tenant", method="GET", expect=403,
          path=c.path.replace("{tenant}", "nobody"), sign=c.sign())
    common(c)
    return c


def slack_forms(c: Corpus) -> None:
    signed = c.sign()
    for body, note in (("payload=%zz", "a broken percent escape"), ("payload=hello", "a payload that is not JSON"),
                       ("payload=", "an empty payload"), ("payload=%5B%5D", "a list"),
                       ("payload=%7B%7D", "an object without team or user"), ("payload=null", "null"),
                       ("payload=1", "a number"), ("payload", "a field without '='"),
                       ("payload=%FF%FE", "bytes that are not UTF-8"),
                       ("command=%2Fdeploy&text=prod", "a slash command"), ("ssl_check=1&token=x", "Slack's ssl_check"),
                       ("payload=%7B&payload=%7D", "the payload split in two"),
                       (form({"type": "block_actions"}), "a tap without its user"),
                       (form({"type": "block_actions", "user": "U0123ABC", "team": "T0TEAM"}),
                        "user and team as strings")):
        c.add("malformed_form", f"an interaction form with {note}, signed", expect=400, body=body,
              content_type=FORM_TYPE, sign=signed)
    for payload, note in ((sl_action(700, actions={"a": 1}), "actions as an object (actions[0] raises KeyError)"),
                          (sl_action(701, channel="C0GENERAL"), "channel as a string (.get on a str)"),
                          ({"type": "view_submission", "user": {"id": "U0123ABC"}, "team": {"id": "T0TEAM"},
                            "view": {"callback_id": "ic_edit", "private_metadata": "[]"}}, "modal metadata as a list"),
                          ({"type": "view_submission", "user": {"id": "U0123ABC"}, "team": {"id": "T0TEAM"},
                            "view": {"callback_id": "ic_edit", "private_metadata": "{}", "state": "x"}},
                           "modal state as a string")):
        c.add("malformed_form", f"an interaction with {note}", expect=400, body=form(payload), content_type=FORM_TYPE,
              sign=signed)
    c.add("malformed_form", "a payload nested 100 000 deep", expect=400, content_type=FORM_TYPE,
          body_parts=[["payload=", 1], ["%5B", 100_000], ["%5D", 100_000]], sign=signed)


# -- whatsapp ---------------------------------------------------------------------------------------

def wa_text(serial: int, text: str = "hello", *, sender: str = wa.USER_WA_ID, number: str = wa.PHONE_NUMBER_ID) -> str:
    message = {"from": sender, "id": f"wamid.ATK{serial:010d}", "timestamp": str(DATE), "type": "text",
               "text": {"body": text}}
    return wa.body(wa.envelope({"contacts": [{"profile": {"name": "Mallory"}, "wa_id": sender}], "messages": [message]},
                               phone_number_id=number)).decode()


def wa_tap(serial: int, button: str) -> str:
    message = {"context": {"from": wa.BUSINESS_NUMBER, "id": "wamid.PROMPT"}, "from": wa.USER_WA_ID,
               "id": f"wamid.ATK{serial:010d}", "timestamp": str(DATE), "type": "interactive",
               "interactive": {"type": "button_reply", "button_reply": {"id": button, "title": "Approve"}}}
    return wa.body(wa.envelope({"contacts": [{"profile": {"name": "Mallory"}, "wa_id": wa.USER_WA_ID}],
                                "messages": [message]})).decode()


def wa_status(serial: int, state: str) -> str:
    return wa.body(wa.envelope({"statuses": [{"id": f"wamid.OUT{serial:010d}", "status": state,
                                              "timestamp": str(DATE), "recipient_id": wa.USER_WA_ID}]})).decode()


def whatsapp() -> Corpus:
    c = Corpus(Profile("whatsapp", "meta_sha256", wa_text, not_applicable={
        "stale_signature": "Meta's X-Hub-Signature-256 covers the raw body and no time, so a signature cannot be "
                           "stale; a request resent under the same app secret is a redelivery, stored once by its "
                           "message id. Requests captured before the app secret was reset are in replay."}))
    c.add("missing_signature", "no X-Hub-Signature-256")
    c.add("missing_signature", "an empty X-Hub-Signature-256", sign=c.sign(mutate=["empty"]))
    c.add("missing_signature", "the label alone, sha256=", sign=c.sign(mutate=["truncate:7"]))
    c.add("missing_signature", "only the legacy SHA-1 X-Hub-Signature, correct", sign=c.sign(
        digest="sha1", prefix="sha1=", header="X-Hub-Signature"))
    c.add("missing_signature", "the signature under X-Hub-Signature-255", sign=c.sign(header="X-Hub-Signature-255"))
    for name in ("access_token", "verify_token"):
        c.add("forged_signature", f"HMAC keyed with the {name.replace('_', ' ')}", sign=c.sign(key=name))
    for construction, note in (("plain", "SHA-256 of the body, no key"), ("prefix", "SHA-256(secret + body)"),
                               ("suffix", "SHA-256(body + secret)")):
        c.add("forged_signature", note, sign=c.sign(construction=construction))
    for digest in ("sha1", "md5", "sha512"):
        c.add("forged_signature", f"HMAC-{digest.upper()} labelled sha256=", sign=c.sign(digest=digest))
    c.add("forged_signature", "the right HMAC, base64 in place of hex", sign=c.sign(encoding="base64"))
    c.add("forged_signature", "Telegram's secret header carrying the app secret",
          sign={"recipe": "telegram_secret_token"})
    c.add("forged_signature", "Slack's v0 signature keyed with the app secret", sign={"recipe": "slack_v0"})
    tampers = [*(([f"replace_at:{i}"], f"hex digit {i - 7} changed") for i in (7, 8, 15, 25, 35, 45, 55, 65, -1)),
               (["upper"], "upper-cased"), (["upper_from:7"], "hex digits upper-cased"),
               (["replace:sha256=:sha1="], "labelled sha1="),
               (["replace:sha256=:sha256:"], "sha256: instead of sha256="),
               (["replace:sha256=:SHA256="], "labelled SHA256="), (["replace:sha256=:"], "without its label"),
               (["double"], "twice"), (["append:0"], "a digit appended"), (["insert_at:20: "], "a space inside"),
               (["set_at:20:\u00e9"], "a Latin-1 byte inside")]
    for steps, note in tampers:
        c.add("tampered_signature", f"the signature {note}", sign=c.sign(mutate=steps))
    for n in (8, 20, 39, 50, 60, 69, -1, -2):
        c.add("truncated_signature", f"the signature cut to [:{n}]", sign=c.sign(mutate=[f"truncate:{n}"]))
    c.add("truncated_signature", "the signature without its first hex digit", sign=c.sign(mutate=["drop_at:7"]))
    bodies = [(wa_text(500 + i, text), f"a captured message {text!r}") for i, text in
              enumerate(("hello", "Hi! My connect code is Xq3_kP9vL2mN8rT-wY5zB7cD1fG4hJ6s", "please pay the invoice"))]
    bodies += [(wa_tap(510 + i, button), f"a captured tap {button!r}") for i, button in
               enumerate(("a:cb_5Jk2LmN8pQ4rS7tV", "r:cb_5Jk2LmN8pQ4rS7tV", "chip:1"))]
    bodies += [(wa_status(520 + i, state), f"a captured {state} status")
               for i, state in enumerate(("delivered", "read", "failed"))]
    replays_with_previous_key(c, bodies)
    c.add("replay", "the captured body signed with the previous key in the legacy SHA-1 header too",
          body_from="captured", sign=c.sign(key="previous"), headers=[["X-Hub-Signature", "sha1=0"]])
    original = wa_text(600, "hello")
    swaps = [(wa_text(600, "transfer the money"), "the text changed"),
             (wa_text(601, "hello"), "the message id changed"),
             (wa_text(600, sender=wa.OTHER_WA_ID), "the sender changed"),
             (wa_text(600, number="999999999999999"), "the number changed"),
             (original + " ", "a space appended"), (original + "\n", "a newline appended"),
             (original.replace(":", ": "), "re-serialised with spaces"), (original[:-1], "the last byte dropped"),
             (original + original, "the body twice"), ("", "an empty body"), (wa_status(600, "read"), "a status"),
             (wa_text(600, "h\u00e9llo"), "a non-ASCII text (escaped as Meta does)"),
             (wa_text(600, "hello").replace("Mallory", "M\u00e4llory"), "the name unescaped (not as Meta sends it)")]
    for body, note in swaps:
        c.add("body_swap", f"a valid signature of a message, sent over a body with {note}", body=body,
              sign=c.sign(signed_body=original))
    c.add("body_swap", "the captured request's signature over another body", body=wa_text(602), headers_from="captured",
          content_type=None)
    obj = '{"object":"whatsapp_business_account",'
    malformed(c, [
        (obj[:-1] + "}", "no entry"), (obj + '"entry":"x"}', "entry as a string"),
        (obj + '"entry":[1]}', "an entry that is a number"),
        (obj + '"entry":[{"changes":{}}]}', "changes as an object"),
        (obj + '"entry":[{"changes":[1]}]}', "a change that is a number"),
        (obj + '"entry":[{"changes":[{"field":"messages","value":"x"}]}]}', "a change value that is a string"),
        (obj + '"entry":[{"changes":[{"field":"messages","value":{}}]}]}', "a messages change without metadata"),
        (obj + '"entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"106540352242922"},'
         '"messages":"x"}}]}]}', "messages as a string"),
        (obj + '"entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"106540352242922"},'
         '"messages":[{"type":"text"}]}}]}]}', "a message without id or sender"),
        (obj + '"entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"106540352242922"},'
         '"statuses":[{"id":"wamid.X","status":"bogus"}]}}]}]}', "a status that is not one of Meta's")])
    handshakes(c)
    common(c)
    return c


def handshakes(c: Corpus) -> None:
    """Meta's GET: hub.mode=subscribe, hub.challenge, hub.verify_token. Refused with 403 (never echoing the
    challenge) unless all three are right."""
    query = [["hub.mode", "subscribe"], ["hub.challenge", "1158201444"]]

    def token(**options: object) -> dict[str, object]:
        return {"recipe": "meta_verify_token", "key": "verify_token", **options}

    cases = [(query, token(key="literal:guess"), "a guessed verify token"),
             (query, token(key="current"), "the app secret as verify token"),
             (query, token(key="access_token"), "the access token as verify token"), (query, None, "no verify token"),
             (query, token(mutate=["empty"]), "an empty verify token"),
             (query, token(mutate=["upper"]), "the token upper-cased"),
             (query, token(mutate=["swapcase_letter:0"]), "the token's first letter's case flipped"),
             (query, token(mutate=["swapcase_letter:-1"]), "the token's last letter's case flipped"),
             (query, token(mutate=["lower"]), "the token lower-cased"),
             *((query, token(mutate=[f"replace_at:{i}"]), f"the token with character {i} changed")
               for i in (0, 10, -1)),
             (query, token(mutate=["append:x"]), "a character appended"),
             (query, token(mutate=["prepend:x"]), "a character prepended"),
             (query, token(mutate=["truncate:-1"]), "the token cut by one"),
             (query, token(mutate=["truncate:10"]), "the token cut to 10"),
             (query, token(placement="header"), "the right token in a header, not the query"),
             (query, token(param="hub.verify-token"), "the right token under a misspelt parameter"),
             ([["hub.mode", "unsubscribe"], query[1]], token(), "the right token with hub.mode=unsubscribe"),
             ([query[1]], token(), "the right token without hub.mode"),
             ([["hub.mode", "SUBSCRIBE"], query[1]], token(), "the right token with hub.mode=SUBSCRIBE"),
             ([query[0]], token(), "the right token without a challenge"),
             ([query[0], ["hub.challenge", "9" * 257]], token(), "the right token with a 257-character challenge")]
    for params, sign, note in cases:
        fields = {"sign": sign} if sign else {}
        c.add("handshake", note, method="GET", expect=403, query=params, **fields)
    for tenant in ("nobody", "Default"):
        c.add("handshake", f"the right verify token to the tenant {tenant!r}", method="GET", expect=403, query=query,
              path=c.path.replace("{tenant}", tenant), sign=token())


BUILDERS = (telegram, slack, whatsapp)
