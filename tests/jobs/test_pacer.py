"""The outbox's per-conversation pacing (Slack asks for about one message a second per channel)."""

from __future__ import annotations

from jobs.delivery import Pacer


def test_a_burst_goes_at_once_then_one_a_second() -> None:
    pacer = Pacer()
    waits = [pacer.delay(("slack", "T1:C1"), 1.0, 3, now=100.0) for _ in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] == 1.0 and waits[4] == 2.0  # each further send a second after the one before


def test_conversations_are_paced_apart_and_the_bucket_refills() -> None:
    pacer = Pacer()
    assert pacer.delay(("slack", "T1:C1"), 1.0, 1, now=0.0) == 0.0
    assert pacer.delay(("slack", "T1:C2"), 1.0, 1, now=0.0) == 0.0  # another channel: its own budget
    assert pacer.delay(("slack", "T1:C1"), 1.0, 1, now=0.25) == 0.75
    assert pacer.delay(("slack", "T1:C1"), 1.0, 1, now=10.0) == 0.0  # idle long enough: full again
