"""Folding text to what it looks like, for the forgery check of jobs/identity.py (ID-4).

``fold`` maps a line to lower-case Latin where its characters look like Latin letters, one
character for one (so a match in the folded line points at the same characters of ``base``):

- format (Cf: bidi controls, zero-width characters, Unicode tag characters), private-use (Co),
  unassigned (Cn), surrogate and control characters and combining marks (Mn/Me, which include the
  variation selectors FE00–FE0F and E0100–E01EF) are dropped;
- compatibility forms are unfolded (NFKD: fullwidth, mathematical, circled letters);
- look-alikes fold through Unicode's confusables data (UTS #39: confusables.txt, as the
  ``confusable-homoglyphs`` package ships it, offline): the characters that share a skeleton
  prototype form a class, and every member folds to one representative, a Latin letter where the
  class has one, then to lower case (a capital look-alike, Greek Μ, reads as the capital it
  imitates, M, not as its own lower case μ). Small capitals (``ᴘ``, ``ʀ``), whose class in that
  table has no Latin member, fold through their Unicode names to the capital letter;
- a few ASCII digits and symbols typed for letters (``3`` for e, ``$`` for s: not look-alikes,
  so not in Unicode's table) fold to those letters;
- opening brackets of every script fold to ``[``, closing ones to ``]``.

The tables are built once per process (about 0.3 s: ``prepare``, called at start by
app/services/background.py, or the first line that is not plain ASCII); plain ASCII lines, most
messages, go through a 128-entry table and need none of them.
"""

from __future__ import annotations

import functools
import re
import unicodedata

_DROPPED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Mn", "Me"})
# Typed substitutions, not look-alikes: Unicode's table folds 0, 1 and | (to o and l) itself.
_TYPED = {"3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
# Read as the earlier hand-made map did, where Unicode's table keeps them apart: Greek ε folds to the
# open e (ɛ), which a reader takes for an e.
_BEYOND_UNICODE = {"ɛ": "e"}
# Blocks holding the small capitals (IPA, phonetic extensions, Latin Extended-D/E, Latin Extended-F/G).
_SMALL_CAPITAL_BLOCKS = ((0x0250, 0x02AF), (0x1D00, 0x1DBF), (0xA720, 0xA7FF), (0xAB30, 0xAB6F),
                         (0x10780, 0x107BF), (0x1DF00, 0x1DFFF))
_BRACKET_SWAP = str.maketrans("[]", "][")


def _union_classes(data: dict[str, list[dict[str, str]]], small_caps: dict[str, str]) -> dict[str, str]:
    """Confusable classes (a prototype and every character mapped to it) as character → representative:
    a Latin letter of the class, else the letter a small capital or a compatibility form of the class
    stands for, else the lowest character."""
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for key, entries in data.items():
        a = key.replace("\u200e", "")  # the table wraps right-to-left characters in LRMs
        for entry in entries:
            b = entry["c"].replace("\u200e", "")
            if a and b:
                parent[root(a)] = root(b)
    members: dict[str, list[str]] = {}
    for node in list(parent):
        members.setdefault(root(node), []).append(node)

    def reduced(node: str) -> str:  # a small capital's letter, a compatibility form's (𝑓 → f), no marks (f̦ → f)
        text = unicodedata.normalize("NFKD", "".join(small_caps.get(ch, ch) for ch in node)).casefold()
        return "".join(ch for ch in text if not unicodedata.combining(ch))

    def rank(node: str) -> tuple[int, int]:
        if len(node) == 1 and "a" <= node <= "z":
            return 0, ord(node)
        if len(node) == 1 and node.isascii() and node.isalpha():
            return 1, ord(node)
        short = reduced(node)
        if len(short) == 1 and "a" <= short <= "z":
            return 2, ord(short)
        return (3 if node.isascii() else 4) if len(node) == 1 else 5, ord(node[0])

    representative: dict[str, str] = {}
    for group in members.values():
        best = min(group, key=rank)
        best = reduced(best) if rank(best)[0] == 2 else best
        if len(best) == 1:
            representative.update({m: best for m in group if len(m) == 1 and m != best})
    return representative


def _small_capitals() -> dict[str, str]:
    """``LATIN LETTER SMALL CAPITAL P`` → ``P``, and the same for Greek and Cyrillic small capitals."""
    found: dict[str, str] = {}
    for start, end in _SMALL_CAPITAL_BLOCKS:
        for cp in range(start, end + 1):
            name = unicodedata.name(chr(cp), "")
            if "SMALL CAPITAL " not in name:
                continue
            try:
                found[chr(cp)] = unicodedata.lookup(name.replace("LETTER SMALL CAPITAL ", "CAPITAL LETTER "))
            except KeyError:
                continue
    return found


def _settle(ch: str, representative: dict[str, str], small_caps: dict[str, str]) -> str:
    """Follow the confusable class, then the small capital's letter, then the lower case, until
    nothing changes: a capital look-alike (Greek Μ) is read as the capital it imitates (M, so m),
    not as its own lower case (μ)."""
    seen: set[str] = set()
    while ch not in seen:
        seen.add(ch)
        step = representative.get(ch, ch)
        if step == ch:
            step = small_caps.get(ch, ch)
        if step == ch:
            lower = ch.casefold()
            step = lower if len(lower) == 1 else ch
        if step == ch:
            break
        ch = step
    return ch


def _bracket(ch: str) -> str | None:
    category = unicodedata.category(ch)
    if category == "Ps" or ch == "<":
        return "["
    if category == "Pe" or ch == ">":
        return "]"
    return None


@functools.cache
def _table() -> dict[int, str]:
    """The one-for-one fold of every character that changes (built once, on first non-ASCII line)."""
    from confusable_homoglyphs.confusables import confusables_data  # ~0.15 s: only when needed

    small_caps = _small_capitals()
    representative = _union_classes(confusables_data, small_caps)
    table: dict[int, str] = {}
    known = {*representative, *small_caps}
    for ch in known | {upper for ch in known if len(upper := ch.upper()) == 1}:
        if ch.isascii():
            continue  # ASCII_TABLE's fold, so both paths agree
        folded = _settle(ch, representative, small_caps)
        folded = _BEYOND_UNICODE.get(folded, _TYPED.get(folded, folded))
        if folded != ch:
            table[ord(ch)] = folded
    for cp in range(0x10000):  # brackets (none outside the BMP are confusable with ASCII ones)
        mark = _bracket(chr(cp))
        if mark is not None:
            table[cp] = mark
    return table | ASCII_TABLE


def _ascii_table() -> dict[int, str]:
    """The fold of plain ASCII, written out so the fast path needs no Unicode data: the same result
    for these 128 characters in both paths: ``_table`` takes it over. Unicode's table folds ``I``, ``1``
    and ``|`` to l and ``0`` to O: the same here."""
    table = {cp: " " for cp in range(32)} | {127: " "}  # controls: separators, keeping positions
    table |= {ord(c): c.lower() for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
    table |= {ord(k): v for k, v in _TYPED.items()}
    table |= {ord("0"): "o", ord("1"): "l", ord("I"): "l", ord("|"): "l", ord("<"): "[", ord(">"): "]",
              ord("("): "[", ord(")"): "]", ord("{"): "[", ord("}"): "]"}
    return table


ASCII_TABLE = _ascii_table()


@functools.cache
def _dropped_in_bmp() -> dict[int, None]:
    """Deletions for ``str.translate``: every dropped character of the Basic Multilingual Plane."""
    category = unicodedata.category
    return {cp: None for cp in range(0x10000) if category(chr(cp)) in _DROPPED}


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _keep_astral(match: re.Match[str]) -> str:
    ch = match.group()
    return "" if unicodedata.category(ch) in _DROPPED else ch


def base(line: str) -> str:
    """The line without dropped characters and with compatibility forms unfolded; ``fold`` reads
    this, and so does the nonce check (digits are still digits here)."""
    if line.isascii():
        return line
    text = unicodedata.normalize("NFKD", line).translate(_dropped_in_bmp())
    # Outside the BMP (emoji, tags, variation selectors E0100–E01EF, private-use planes): one by one.
    return _ASTRAL.sub(_keep_astral, text) if _ASTRAL.search(text) else text


def fold(based: str) -> str:
    """``base``'s result folded to what it looks like, one character for one."""
    if based.isascii():
        return based.translate(ASCII_TABLE)
    return based.translate(_table())


def prepare() -> None:
    """Build the tables now (the server does at start, off the event loop)."""
    _table()
    _dropped_in_bmp()


def reverse(text: str) -> str:
    """Text as a right-to-left override shows it: reversed, with brackets mirrored."""
    return text[::-1].translate(_BRACKET_SWAP)
