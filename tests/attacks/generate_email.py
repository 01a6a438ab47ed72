"""The email corpus (tests/attacks/email/attacks.jsonl): our Email Worker's signed raw messages
(channels/email_signature.py) and the hostile mail it passes on. Written by ``python -m tests.attacks.generate``.

Two things shape it. The signature covers a timestamp, the envelope sender and recipient and the raw bytes,
so most attacks bend one of those. And the channel reads any bytes leniently (channels/email_mime.py never
raises): a body is refused with 400 only when it names no sender to answer. Every entry whose body is the
attack is therefore signed with an empty envelope sender (what the Worker sends for a bounce's ``<>``) and
names no usable From: with either, the product rightly accepts the bytes as someone's mail. Mail it accepts
with 200 and must not act on (auto-replies, bounces, lists, Authentication-Results a sender planted) cannot
be a refusal: ``EmailKit`` in kits.py checks those when the channel is armed.
"""

from __future__ import annotations

import gzip

from tests.attacks.generate import (
    FORM_TYPE,
    JSON_SYNTAX,
    Corpus,
    Profile,
    b64,
    forged_keys,
    lying_lengths,
    oversized,
    replays_with_previous_key,
    secret_variants,
    unknown_tenants,
)
from tests.attacks.recipes import EMAIL_INBOX

OWNER = "dana@example.com"  # the kit's genuine sender: DMARC passes, the catch-all minted her smith
DATE = "Thu, 01 Jan 2026 00:00:00 +0000"


def mail(serial: int, text: str = "hello from an attacker", *, sender: str = "mallory@evil.example",
         name: str = "Mallory", to: str = EMAIL_INBOX, subject: str = "Hello", headers: tuple[str, ...] = (),
         message_id: str | None = None) -> str:
    """A person's mail as Cloudflare hands it to the Worker: its MX's Authentication-Results on top (a
    DMARC pass: a stranger let through would mint a smith, run it and send a reply, all of which is counted)."""
    domain = sender.rpartition("@")[2]
    lines = [f"Authentication-Results: mx.cloudflare.net; dkim=pass header.d={domain}; spf=pass "
             f"smtp.mailfrom={sender}; dmarc=pass header.from={domain}", f"From: {name} <{sender}>", f"To: {to}",
             f"Subject: {subject}", f"Date: {DATE}", f"Message-ID: {message_id or f'<atk{serial:06d}@{domain}>'}",
             "MIME-Version: 1.0", 'Content-Type: text/plain; charset="utf-8"', "Content-Transfer-Encoding: 8bit",
             *headers, "", text, ""]
    return "\r\n".join(lines)


def senderless(body: str) -> str:
    """``body`` without its From: nobody to answer, so only a 400 is right."""
    return "\r\n".join(line for line in body.split("\r\n") if not line.startswith("From:"))


def email() -> Corpus:
    c = Corpus(Profile("email", "ic_email_v1", mail, content_type="message/rfc822", key_length=43,
                       limit=10_000_000, body_format="an email"))
    headers_and_keys(c)
    timestamps(c)
    envelopes(c)
    replays(c)
    swaps(c)
    not_mail(c)
    hostile_mime(c)
    paths(c)
    forged_keys(c)
    secret_variants(c)
    oversized(c)
    big_mail(c)
    lying_lengths(c)
    unknown_tenants(c)
    return c


def headers_and_keys(c: Corpus) -> None:
    c.add("missing_signature", "no X-IC-* headers")
    for option, note in (("omit_timestamp", "no X-IC-Timestamp"), ("omit_signature", "no X-IC-Signature"),
                         ("omit_envelope_to", "no X-IC-Envelope-To")):
        c.add("missing_signature", f"correctly signed, {note}", sign=c.sign(**{option: True}))
    c.add("missing_signature", "an empty X-IC-Envelope-To (signed as empty)", sign=c.sign(envelope_to=""))
    c.add("missing_signature", "an empty signature", sign=c.sign(mutate=["empty"]))
    c.add("missing_signature", "the label alone, v1=", sign=c.sign(mutate=["truncate:3"]))
    c.add("missing_signature", "an empty timestamp", sign=c.sign(timestamp_header=""))
    for header in ("X-IC-Signature-256", "X-Signature", "Signature", "Authorization", "X-Hub-Signature-256"):
        c.add("missing_signature", f"the right signature under {header}", sign=c.sign(header=header))
    for key in ("api_token", "account_id"):
        c.add("forged_signature", f"HMAC keyed with the Cloudflare {key.replace('_', ' ')}", sign=c.sign(key=key))
    for template, note in (("{ts}\n{from}\n{to}\n{body}", "no version line"),
                           ("{version}\r\n{ts}\r\n{from}\r\n{to}\r\n{body}", "CRLF between the fields"),
                           ("{version}\n{ts}\n{to}\n{from}\n{body}", "sender and recipient swapped"),
                           ("{version}\n{ts}\n{body}", "no envelope"), ("{body}", "the body alone"),
                           ("{version}\n{ts}\n{from}\n{to}\n{body}\n", "a newline after the body"),
                           ("{version}\n{ts}\n{from}\n{to}{body}", "no newline before the body"),
                           ("{version}:{ts}:{body}", "Slack's v0 layout"),
                           ("{body}\n{version}\n{ts}\n{from}\n{to}", "the envelope after the body"),
                           ("{version}\n{from}\n{to}\n{ts}\n{body}", "the timestamp last")):
        c.add("forged_signature", f"HMAC over the wrong signed text: {note}", sign=c.sign(basestring=template))
    for version in ("v0", "v2", "V1"):
        c.add("forged_signature", f"version {version} in the signed text and the label", sign=c.sign(version=version))
    for digest in ("sha1", "md5", "sha512"):
        c.add("forged_signature", f"HMAC-{digest.upper()} labelled v1=", sign=c.sign(digest=digest))
    c.add("forged_signature", "the right HMAC, base64 in place of hex", sign=c.sign(encoding="base64"))
    c.add("forged_signature", "keyed with the secret base64-encoded", sign=c.sign(key_mutate=["b64"]))
    c.add("forged_signature", "Telegram's secret header carrying the secret", sign={"recipe": "telegram_secret_token"})
    c.add("forged_signature", "Slack's v0 signature keyed with the secret", sign={"recipe": "slack_v0"})
    c.add("forged_signature", "Meta's body signature keyed with the secret", sign={"recipe": "meta_sha256"})
    tampers = [*(([f"replace_at:{i}"], f"hex digit {i - 3} changed") for i in (3, 4, 12, 25, 40, 55, 66)),
               (["upper"], "upper-cased"), (["upper_from:3"], "hex digits upper-cased"),
               (["replace:v1=:V1="], "labelled V1="), (["replace:v1=:v0="], "labelled v0="),
               (["replace:v1=:sha256="], "labelled sha256="), (["replace:v1=:v1:"], "v1: instead of v1="),
               (["replace:v1=:"], "without its label"), (["double"], "twice"), (["append:0"], "a digit appended"),
               (["insert_at:20: "], "a space inside"), (["prepend:v1="], "labelled twice"),
               (["set_at:10:\u00e9"], "a Latin-1 byte inside"), (["append:\u00fc"], "a Latin-1 byte appended"),
               (["append:,v1=0"], "a second, forged value after a comma")]
    for steps, note in tampers:
        c.add("tampered_signature", f"the signature {note}", sign=c.sign(mutate=steps))
    for n in (3, 4, 10, 20, 35, 50, 60, -1, -2):
        c.add("truncated_signature", f"the signature cut to [:{n}]", sign=c.sign(mutate=[f"truncate:{n}"]))
    c.add("truncated_signature", "the signature without its first hex digit", sign=c.sign(mutate=["drop_at:3"]))
    c.add("tampered_signature", "two signatures, a changed one first (the first is read)",
          sign=c.sign(signature_headers=[["replace_at:5"], []]))
    c.add("tampered_signature", "two forged signatures", sign=c.sign(signature_headers=[["replace_at:5"], ["upper"]]))
    c.add("tampered_signature", "a second X-IC-Signature injected after an LF in a forged one",
          sign=c.sign(mutate=["replace_at:5", "append:\nX-IC-Signature: v1=00"]))


def timestamps(c: Corpus) -> None:
    # Past the window by at least a second, ahead of it by at least 5 s (the server reads its clock a moment later).
    for offset in (-301, -302, -310, -360, -600, -3600, -86400, -604800, -31536000, 305, 310, 360, 3600, 86400,
                   31536000):
        c.add("stale_signature", f"correctly signed at now{offset:+d} s: outside the 5 minutes",
              sign=c.sign(timestamp=offset))
    for literal in ("0", "1", "1767225600", "9999999999", "999999999999", "01767225600"):
        c.add("stale_signature", f"signed over the timestamp {literal!r}", sign=c.sign(timestamp_literal=literal))
    for literal, note in (("9" * 13, "13 digits"), ("9" * 5000, "5000 digits"), ("-300", "negative"),
                          ("1.7e9", "a float"), ("0x65", "hex"), ("soon", "a word"), ("\u00b2", "a superscript two"),
                          ("176722560\u00b9", "ending in a superscript one"), ("1767225600 0", "two numbers")):
        c.add("tampered_signature", f"signed and sent with the timestamp {note}",
              sign=c.sign(timestamp_literal=literal))
    for delta in (1, -1, 60, -299):
        c.add("tampered_signature", f"the timestamp header moved {delta:+d} s from the signed one",
              sign=c.sign(timestamp_header_delta=delta))
    for deltas, note in (([3600, 0], "now first, then the signed one"), ([0, 3600], "the signed one, then now")):
        c.add("stale_signature", f"signed an hour ago, two X-IC-Timestamp headers: {note}",
              sign=c.sign(timestamp=-3600, timestamp_header_deltas=deltas))
    c.add("tampered_signature", "an LF in the timestamp header (the HTTP server refuses the header)", expect=400,
          code=None, sign=c.sign(timestamp_header="1767225600\n0"))


def envelopes(c: Corpus) -> None:
    """The signature covers the envelope: the same bytes for another inbox, or from another sender, are refused."""
    for sent, note in ((f"ceo@{EMAIL_INBOX.partition('@')[2]}", "another inbox"), ("PA@acme.example", "upper case"),
                       ("pa@acme.example.", "a trailing dot"), ("pa@evil.example", "another domain"),
                       ("pa+x@acme.example", "a +tag"), (f"{EMAIL_INBOX}, ceo@acme.example", "a second recipient"),
                       ("p\u00e4@acme.example", "a Latin-1 letter")):
        c.add("tampered_signature", f"signed for {EMAIL_INBOX}, sent to {note}", sign=c.sign(envelope_to_header=sent))
    for sent, note in ((OWNER, "the owner"), ("mallory@evil.example", "another sender"), ("<>", "<>")):
        c.add("tampered_signature", f"signed with an empty envelope sender, sent from {note}",
              sign=c.sign(envelope_from_header=sent))
    c.add("tampered_signature", "signed from the owner, sent with an empty envelope sender",
          sign=c.sign(envelope_from=OWNER, envelope_from_header=""))
    c.add("tampered_signature", "the envelope sender's line moved into the recipient (a boundary shift)",
          sign=c.sign(envelope_from=f"mallory@evil.example\n{EMAIL_INBOX}", envelope_to="",
                      envelope_from_header="mallory@evil.example", envelope_to_header=EMAIL_INBOX))
    c.add("tampered_signature", "two envelope recipients, another inbox first (the first is read)",
          sign=c.sign(envelope_to_headers=["ceo@acme.example", EMAIL_INBOX]))
    c.add("tampered_signature", "a second X-IC-Envelope-To injected after a CRLF, another inbox first",
          sign=c.sign(envelope_to_header=f"ceo@acme.example\r\nX-IC-Envelope-To: {EMAIL_INBOX}"))
    for header, value, note in (("envelope_to", f"{EMAIL_INBOX}\nx", "a bare LF in the recipient"),
                                ("envelope_to", f"{EMAIL_INBOX}\r\n ceo@acme.example", "the recipient folded"),
                                ("envelope_to", f"{EMAIL_INBOX}\rx", "a bare CR in the recipient"),
                                ("envelope_to", f"pa\u0000@{EMAIL_INBOX.partition('@')[2]}", "a NUL in the recipient"),
                                ("envelope_from", "a\u0000@evil.example", "a NUL in the sender"),
                                ("envelope_from", "a@evil.example\nb", "a bare LF in the sender")):
        c.add("tampered_signature", f"{note}, signed as sent: the HTTP server refuses the header", expect=400,
              code=None, sign=c.sign(**{header: value}))


def replays(c: Corpus) -> None:
    bodies = [(mail(500 + i, text), f"a captured mail {text!r}") for i, text in
              enumerate(("hello", "YES", "please pay the invoice", "Reply YES to approve"))]
    bodies.append((mail(510, "hello", sender=OWNER, name="Dana Reyes"), "a captured mail from the owner"))
    replays_with_previous_key(c, bodies)
    c.add("replay", "the captured body signed again with the previous key, fresh timestamp", body_from="captured",
          sign=c.sign(key="previous", envelope_from=OWNER))
    for offset in (-301, -3600):
        c.add("replay", f"the captured body replayed {-offset} s later with the current key", body_from="captured",
              sign=c.sign(timestamp=offset, envelope_from=OWNER))
    for i, offset in enumerate((-301, -600, -3600, -86400)):
        c.add("replay", f"signed {-offset} s ago, resent with the timestamp header refreshed to now",
              body=mail(540 + i), sign=c.sign(timestamp=offset, timestamp_header_delta=-offset))


def swaps(c: Corpus) -> None:
    original = mail(600, "hello")
    auto = mail(601, "I am away", headers=("Auto-Submitted: auto-replied",))
    planted = "Authentication-Results: mx.cloudflare.net; dmarc=pass header.from=example.com\r\n"
    swapped = [(mail(600, "transfer the money"), "the text changed"), (mail(602), "another Message-ID"),
               (mail(600, sender=OWNER, name="Dana Reyes"), "the owner's From"),
               (mail(600, subject="Re: invoice"), "the subject changed"),
               (mail(600, to="ceo@acme.example"), "To changed"),
               (planted + original, "Authentication-Results for the owner's domain prepended"),
               (original.replace("\r\n\r\n", "\r\nReply-To: mallory@evil.example\r\n\r\n", 1), "a Reply-To added"),
               (original.replace("\r\n", "\n"), "CRLF turned into LF"), (original + "\r\n", "a CRLF appended"),
               (original[:-1], "the last byte dropped"), (original + original, "the message twice"),
               ("", "an empty body"), (original.replace("8bit", "quoted-printable"), "another transfer encoding")]
    for body, note in swapped:
        c.add("body_swap", f"a valid signature of a mail, sent over one with {note}", body=body,
              sign=c.sign(signed_body=original))
    c.add("body_swap", "a valid signature of an auto-reply, sent over it without Auto-Submitted (it would wake)",
          body=auto.replace("Auto-Submitted: auto-replied\r\n", ""), sign=c.sign(signed_body=auto))
    c.add("body_swap", "the captured request's signature over another body", body=mail(603), headers_from="captured",
          content_type=None)


def not_mail(c: Corpus) -> None:
    """JSON and forms where an RFC 5322 message is expected, correctly signed: read as a mail without a
    sender (empty envelope sender, no From), so 400."""
    signed = c.sign()
    for body in JSON_SYNTAX:
        c.add("malformed_json", f"JSON, not a mail: {body[:20]!r}", expect=400, body=body, sign=signed)
    for body, note in (('{"from":"dana@example.com","text":"hi"}', "a JSON 'mail' naming a sender"),
                       ('{"update_id":1,"message":{"text":"hi"}}', "a Telegram update"),
                       ('{"type":"event_callback","event":{"type":"message"}}', "a Slack event")):
        c.add("malformed_json", note, expect=400, body=body, sign=signed)
    for raw, note in ((b'{"a":"\xff\xfe"}', "invalid UTF-8 inside a string"), (b'{"a":"\xc0\xaf"}', "an overlong '/'")):
        c.add("malformed_json", note, expect=400, body_b64=b64(raw), sign=signed)
    c.add("malformed_json", "a senderless mail gzip-compressed (Content-Encoding: gzip), signed as sent", expect=400,
          body_b64=b64(gzip.compress(senderless(mail(700)).encode(), mtime=0)),
          headers=[["Content-Encoding", "gzip"]], sign=signed)
    c.add("malformed_json", "arrays nested 100 000 deep", expect=400, body_parts=[["[", 100_000], ["]", 100_000]],
          sign=signed)
    c.add("malformed_json", "JSON with Content-Type: application/json", expect=400, body='{"a":1}',
          content_type="application/json", sign=signed)
    for body in ("update_id=1&text=hi", "from=dana%40example.com&text=hi", "payload=%7B%7D", "a=1&a=2", "%zz=%zz",
                 "=&=", "From=mallory%40evil.example", "envelope_from=dana%40example.com"):
        c.add("malformed_form", f"a form, not a mail: {body!r}", expect=400, body=body, content_type=FORM_TYPE,
              sign=signed)
    c.add("malformed_form", "a multipart form carrying a mail in a part", expect=400,
          content_type="multipart/form-data; boundary=XyZ", sign=signed,
          body=f'--XyZ\r\nContent-Disposition: form-data; name="email"\r\n\r\n{senderless(mail(701))}\r\n--XyZ--\r\n')


def hostile_mime(c: Corpus) -> None:
    """Mail a stranger could send through the Worker, built to hurt the parser or name no sender: each
    must be read in a moment and refused with 400, never a 500 or a timeout."""
    signed = c.sign()
    base = senderless(mail(800))
    for line, note in (("From:", "an empty From"), ("From: not an address", "a From that is no address"),
                       ("From: Mallory", "a display name alone"), ("From: <>", "From: <>"),
                       ("From: mallory@", "no domain"), ("From: @evil.example", "no local part"),
                       ("From: mallory@localhost", "a domain without a dot"),
                       ("From: a@evil.example, b@evil.example", "two addresses"),
                       ("From: undisclosed-recipients:;", "an empty group"),
                       ("From: =?utf-8?q?mallory=40evil.example?=", "an encoded word in place of the address"),
                       ("From: (mallory@evil.example)", "only a comment"),
                       ("From: mallory@evil.example\r\nFrom: dana@example.com", "two From headers"),
                       ("From: <mallory@evil.example", "an unclosed angle bracket"),
                       ("From: mallory@[127.0.0.1]", "an address literal"),
                       ("From: \"Dana\" <dana@example.com> <mallory@evil.example>", "two angle addresses")):
        c.add("malformed_mime", f"{note}, no envelope sender", expect=400, body=line + "\r\n" + base, sign=signed)
    for body, note in (("", "an empty body"), ("\r\n", "a blank line alone"), ("\r\n\r\nhello", "a body, no headers"),
                       ("Subject: no sender\r\n\r\nhello", "headers without From"),
                       ("From mallory@evil.example Thu Jan  1 00:00:00 2026\r\n" + base, "an mbox From_ line")):
        c.add("malformed_mime", f"{note}, no envelope sender", expect=400, body=body, sign=signed)
    for parts, note in (([["Subject: ", 1], ["=?utf-8?q?a?= ", 30_000], ["\r\n\r\nhi", 1]], "30 000 encoded words"),
                        ([["From: a\r\n", 1], [" b\r\n", 140_000], ["\r\nhi", 1]], "a From folded 140 000 times"),
                        ([["X-Pad: y\r\n", 200_000], ["\r\nhi", 1]], "200 000 header lines"),
                        ([["Subject: ", 1], ["s", 1_000_000], ["\r\n\r\nhi", 1]], "a Subject of a million characters")):
        c.add("malformed_mime", f"{note}, no envelope sender", expect=400, body_parts=parts, sign=signed)
    nuls = b"Subject: a\x00b\r\n\r\nhel\x00lo\x00"
    for raw, note in ((b"\x00" * 4096, "4096 NUL bytes"), (nuls, "NULs in a header and the text"),
                      (bytes(range(256)) * 64, "every byte value, 64 times"),
                      (b"Subject: \xff\xfe\xc0\xaf\r\n\r\n\xff\xfe", "bytes that are no UTF-8"),
                      (b"\xef\xbb\xbf" + base.encode(), "a UTF-8 byte-order mark first")):
        c.add("malformed_mime", f"{note}, no sender", expect=400, body_b64=b64(raw), sign=signed)
    multipart = "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary={b}\r\n\r\n"
    nested = "".join(f"--b{i}\r\nContent-Type: multipart/mixed; boundary=b{i + 1}\r\n\r\n" for i in range(1_500))
    for body, parts, note in (
            (multipart.format(b="b0") + nested, None, "multiparts nested 1 500 deep"),
            (multipart.format(b="b"), [["--b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n", 100_000]],
             "a boundary reused 100 000 deep"),
            (multipart.format(b="b"), [["--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n", 100_000], ["--b--\r\n", 1]],
             "100 000 parts"),
            ("Content-Type: message/rfc822\r\n\r\n", [["Content-Type: message/rfc822\r\n\r\n", 20_000]],
             "message/rfc822 nested 20 000 deep"),
            (multipart.format(b="never") + "--never\r\nContent-Type: text/plain\r\n\r\nhi", None,
             "a boundary never closed"),
            ("Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\nhi\r\n--x--\r\n", None, "multipart without a boundary"),
            ("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=", [["z", 100_000], ["\r\n\r\n--", 1],
                                                                                 ["z", 100_000], ["--\r\n", 1]],
             "a 100 000-character boundary"),
            ("Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n", [["!*&^", 250_000]],
             "base64 of nothing but invalid characters"),
            ("Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n", [["=Z=\r\n", 200_000]],
             "broken quoted-printable"),
            ('Content-Type: text/plain; charset="x-unknown-\u00e9"\r\n\r\nhi', None, "an unknown charset"),
            ('Content-Type: text/plain; charset="base64"\r\n\r\naGk=', None, "a codec that is no charset"),
            ("Content-Type: text/html\r\n\r\n", [["<div>", 400_000]], "400 000 unclosed HTML elements"),
            ("Content-Type: text/html\r\n\r\n", [["<table><tr><td>", 100_000]], "tables nested 100 000 deep"),
            ("Content-Type: text/plain\r\n\r\n", [["> quoted\r\n", 500_000]], "500 000 quoted lines"),
            ("Content-Type: text/plain\r\n\r\n", [["On Mon, Dana wrote:\r\n", 200_000]], "200 000 reply headers"),
            ('Content-Type: application/octet-stream; name="', [["a", 50_000], ['"\r\n\r\nx', 1]],
             "a 50 000-character attachment name")):
        fields = {"body_parts": [[body, 1], *parts]} if parts else {"body": body}
        c.add("malformed_mime", f"{note}, no sender", expect=400, sign=signed, **fields)
    c.add("malformed_mime", "Authentication-Results claiming a DMARC pass, and no From to apply it to", expect=400,
          body="Authentication-Results: mx.cloudflare.net; dmarc=pass header.from=example.com\r\n" + base, sign=signed)
    for envelope_to, note in (("not an address", "no address"), ("pa@acme", "no top-level domain"),
                              (f"<{EMAIL_INBOX}>", "in angle brackets"), ("pa@@acme.example", "two @"),
                              ("@acme.example", "no local part"), ("pa@", "no domain"),
                              ("pa acme.example", "a space, no @"),
                              ("a" * 65 + "@acme.example", "a 65-character local part"),
                              ("pa@acme.e", "a one-letter top-level domain"),
                              ("pa@" + "a" * 254 + ".example", "254 characters before its top-level domain"),
                              (f"{EMAIL_INBOX},ceo@acme.example", "two recipients")):
        c.add("malformed_mime", f"a mail signed for an envelope recipient that is {note}", expect=400, body=mail(850),
              sign=c.sign(envelope_to=envelope_to))


def paths(c: Corpus) -> None:
    for path in ("/v1/email/webhook/{tenant}/", "/v1/email/webhook/{tenant}%2F", "/v1/email/webhook/{tenant}/..",
                 "/v1/email/webhook//{tenant}", "/v1/email/webhook/./{tenant}", "/v1/email/webhook/{tenant}/x",
                 "/v1/email/webhook/..%2f{tenant}", "/v1/email/webhook/{tenant}/%2e%2e/{tenant}", "/v1/email/webhook/",
                 "/v1/email/webhook/{tenant}%2Fx", "/v1/email/webhook/%2F{tenant}"):
        c.add("unknown_tenant", f"correctly signed, to the path {path!r}: no such endpoint", expect=404,
              code="not_found", path=path, sign=c.sign())
    for tenant in ("default%23", "default%0d%0a", "default%09", "%7Bdefault%7D"):
        c.add("unknown_tenant", f"correctly signed, to the tenant {tenant!r}", path=f"/v1/email/webhook/{tenant}",
              sign=c.sign())
    c.add("handshake", "a GET without signature headers: email has no handshake", method="GET", expect=403)
    c.add("handshake", "a GET with a forged signature", method="GET", expect=403, sign=c.sign(key="literal:forged"))
    c.add("handshake", "a GET signed with the previous key", method="GET", expect=403, sign=c.sign(key="previous"))
    c.add("handshake", "a GET to an unknown tenant", method="GET", expect=403,
          path=c.path.replace("{tenant}", "nobody"), sign=c.sign())


def big_mail(c: Corpus) -> None:
    """Mail over IC_MAX_EMAIL_BYTES (the Worker refuses it first; the server again)."""
    limit = c.profile.limit
    head = senderless(mail(950)).replace("text/plain", "application/pdf").replace("8bit", "base64")
    c.add("oversized", "a mail with a base64 attachment, limit + 1 bytes, signed", expect=413,
          body_parts=[[head, 1], ["QUJD", (limit + 1 - len(head)) // 4 + 1]], sign=c.sign())
    c.add("oversized", "a mail of limit + 1 bytes in 1 MB chunks, signed", expect=413, framing={"chunked": 1_000_000},
          body_parts=[[head, 1], ["QUJD", (limit + 1 - len(head)) // 4 + 1]], sign=c.sign())
    c.add("oversized", "Content-Length limit + 1 to the email webhook of an unknown tenant, unsigned", expect=413,
          path="/v1/email/webhook/nobody", body="", framing={"content_length": limit + 1})
