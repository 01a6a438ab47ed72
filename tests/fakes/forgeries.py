"""ID-4's forgery corpus (tests/fixtures/identity, written by make_corpus.py there) and the check
that a text no longer holds an imitation, shared by the tests of each channel."""

from __future__ import annotations

import json
import re
from pathlib import Path

from jobs import textfold

CORPUS = Path(__file__).parents[1] / "fixtures" / "identity"
FORGERIES: list[dict[str, str]] = [json.loads(line) for line in (CORPUS / "forgeries.jsonl").open(encoding="utf-8")]
BENIGN: list[str] = [json.loads(line)["text"] for line in (CORPUS / "benign.jsonl").open(encoding="utf-8")]


def reads_as_platform_or_claim(text: str) -> bool:
    """Whether any line still holds the platform word or an owner claim, read as it looks (folded,
    separators gone, either way round): what a forgery leaves behind when it was not removed."""
    for line in text.splitlines():
        folded = re.sub(r"[\W_]+", "", textfold.fold(textfold.base(line))).replace("i", "l")
        if any(word in folded or word[::-1] in folded for word in ("platfor", "owner", "verlfled", "sender")):
            return True
    return False
