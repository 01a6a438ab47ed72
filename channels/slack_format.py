"""What Slack shows: the model's Markdown as mrkdwn, and the approval prompt as Block Kit."""

from __future__ import annotations

import re
from typing import Any

from slackify_markdown import slackify_markdown

from channels.types import ApprovalPrompt

MAX_SECTION = 3000  # a section block's text (reference/slack.md)


BROADCAST = re.compile(r"<!([^>]*)>")  # <!channel>, <!here>, <!everyone>, <!subteam^…>


def to_mrkdwn(text: str) -> str:
    """Markdown to Slack mrkdwn (bold, links, lists, code) by a parser (slackify-markdown on markdown-it),
    which escapes &, < and > in plain text. It keeps Slack's own <…> tokens; a model's reply may still
    mention a person (<@U…>) but never notify a whole channel."""
    if not text.strip():
        return text
    return BROADCAST.sub(r"&lt;!\1&gt;", slackify_markdown(text).rstrip("\n"))


def escape(text: str) -> str:
    """Slack's three control characters as entities: text we did not write (a tool's arguments, a
    chip label) can then never become a mention such as <!channel> or a disguised link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(text: str) -> dict[str, Any]:
    if len(text) > MAX_SECTION:
        text = text[: MAX_SECTION - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _button(label: str, value: str, action_id: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {"type": "button", "text": {"type": "plain_text", "text": label},
                              "action_id": action_id, "value": value}
    if style:
        button["style"] = style
    return button


def approval_blocks(text: str, approval: ApprovalPrompt) -> list[dict[str, Any]]:
    """APR-3: the request and Approve / Reject / Edit buttons; their values are opaque tokens."""
    buttons = [_button("Approve", approval.approve_token, "ic_approve", "primary"),
               _button("Reject", approval.reject_token, "ic_reject", "danger")]
    if approval.edit_token:
        buttons.append(_button("Edit", approval.edit_token, "ic_edit"))
    return [_section(text), {"type": "actions", "block_id": "ic_approval", "elements": buttons}]


def outcome_blocks(outcome_text: str) -> list[dict[str, Any]]:
    """The prompt after the decision: the outcome, and no buttons left to tap."""
    return [_section(outcome_text)]
