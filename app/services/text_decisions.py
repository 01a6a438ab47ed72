"""APR-3 on channels without buttons (email, LinkedIn): the owner answers an approval prompt in words.

The prompt ends with "Reply YES to approve or NO to reject." (channels.base.APPROVAL_TEXT_PROMPT). The
owner's next message in the same conversation decides the paused run when its first word says so; any
other message is an ordinary message.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.services.runs import Decision, submit_decision
from channels.types import InboundMessage
from models import Approval, Run

APPROVE_WORDS = frozenset({"yes", "y", "approve", "approved", "ok", "okay"})
REJECT_WORDS = frozenset({"no", "n", "reject", "rejected", "deny"})
_FIRST_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def decision_in(text: str) -> str | None:
    """"approve", "reject" or None, from the first word of ``text`` ("Yes, go ahead" approves)."""
    found = _FIRST_WORD.search(text.strip()[:200])
    word = found.group(0).lower() if found else ""
    return "approve" if word in APPROVE_WORDS else "reject" if word in REJECT_WORDS else None


async def decide_by_text(session: AsyncSession, *, smith_id: str, message: InboundMessage) -> bool:
    """Decide the smith's pending approval of this conversation from the owner's words; False when the
    message is not such an answer (or nothing waits)."""
    decision = decision_in(message.text)
    if decision is None:
        return False
    rows = (await session.execute(select(Run.id, Run.project_id, Run.run_metadata).join(
        Approval, Approval.run_id == Run.id).where(
        Run.smith_id == smith_id, Run.status == "awaiting_approval", Approval.status == "pending")
        .order_by(Run.id))).all()
    for run_id, project_id, metadata in rows:
        address = (metadata or {}).get("address")
        if address is not None and address != message.address:
            continue  # another conversation's prompt: answered there
        await submit_decision(session, actor=None, run_id=run_id, project_id=project_id,
                              decision=Decision(decision=decision), decided_by=message.sender_id)  # type: ignore[arg-type]
        return True
    return False
