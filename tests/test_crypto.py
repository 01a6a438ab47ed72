"""Secrets at rest: AES-GCM bound to the owning row, with key rotation (API-3)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from app.crypto import SecretBox, SecretDecryptError, load_or_create_key_file


def test_round_trip_and_fresh_nonce() -> None:
    box = SecretBox(["k1"])
    a = box.encrypt("123456:ABC-bot-token", bound_to="integration:int_1:telegram")
    b = box.encrypt("123456:ABC-bot-token", bound_to="integration:int_1:telegram")
    assert a != b  # a fresh nonce each time
    assert "ABC-bot-token" not in a
    assert box.decrypt(a, bound_to="integration:int_1:telegram") == "123456:ABC-bot-token"


def test_ciphertext_moved_to_another_row_does_not_decrypt() -> None:  # API-3
    box = SecretBox(["k1"])
    sealed = box.encrypt("secret", bound_to="integration:int_1:telegram")
    with pytest.raises(SecretDecryptError):
        box.decrypt(sealed, bound_to="integration:int_2:telegram")


@pytest.mark.parametrize("position", [5, 12, 20, -1])
def test_tampered_ciphertext_does_not_decrypt(position: int) -> None:  # API-3
    box = SecretBox(["k1"])
    sealed = box.encrypt("secret value", bound_to="row")
    prefix, key_id, body = sealed.split(":", 2)
    flipped = body[position] .translate(str.maketrans("ABCDEFGHabcdefgh0123", "BCDEFGHAbcdefgha1230"))
    if flipped == body[position]:
        flipped = "A" if body[position] != "A" else "B"
    chars = list(body)
    chars[position] = flipped
    with pytest.raises(SecretDecryptError):
        box.decrypt(f"{prefix}:{key_id}:{''.join(chars)}", bound_to="row")


def test_unknown_key_and_garbage_are_rejected() -> None:
    sealed = SecretBox(["old"]).encrypt("x", bound_to="row")
    with pytest.raises(SecretDecryptError):
        SecretBox(["other"]).decrypt(sealed, bound_to="row")
    with pytest.raises(SecretDecryptError):
        SecretBox(["old"]).decrypt("not-a-ciphertext", bound_to="row")


def test_rotation_keeps_old_rows_readable_and_reseals_with_newest() -> None:
    old = SecretBox(["old"]).encrypt("value", bound_to="row")
    rotated_box = SecretBox(["new", "old"])
    assert rotated_box.decrypt(old, bound_to="row") == "value"
    assert rotated_box.needs_rotation(old)
    resealed = rotated_box.rotate(old, bound_to="row")
    assert not rotated_box.needs_rotation(resealed)
    assert SecretBox(["new"]).decrypt(resealed, bound_to="row") == "value"


def test_generated_key_file_is_private_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    first = load_or_create_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key_file(path) == first
    assert len(first) >= 43

