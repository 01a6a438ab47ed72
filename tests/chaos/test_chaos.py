"""Issue 15 §3, the bounded form ``./test.sh`` runs: processes SIGKILLed at random on PostgreSQL while people
write, and nothing lost, nothing run or sent twice, every chat's replies in order (tests/chaos/harness.py;
``python -m tests.chaos.harness`` runs the full form: 500 messages, 50 chats, at least 25 kills)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.chaos.harness import run


@pytest.mark.timeout(600)
def test_nothing_is_lost_or_doubled_when_processes_die(tmp_path: Path) -> None:
    figures = asyncio.run(run(messages=120, conversations=12, kills=8, interval_s=1.5, settle_s=90, tmp=tmp_path))
    print("\n" + figures.report())
    assert figures.killed.total() >= 8 and figures.accepted == figures.messages
    assert figures.inbound_lost == 0 and figures.inbound_rows == figures.messages
    assert figures.runs_twice == 0 and figures.runs == figures.messages
    assert figures.replies_twice == 0 and figures.out_of_order == 0
    # A reply caught mid-send by a kill is "unknown" and never resent: the only excuse for a missing one.
    assert figures.missing_replies <= figures.unknown_deliveries, figures.report()
