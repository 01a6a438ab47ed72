"""Secret encryption at rest (AES-256-GCM), bound to the row that owns the secret.

The associated data names the row (``"integration:int_..."``), so a ciphertext copied onto
another row fails authentication, and so does any tampered byte. Keys come from IC_SECRET_KEY (a
comma-separated list, newest first, for rotation) or from a generated key file (mode 0600). Each
ciphertext records which key sealed it, so old rows keep opening after a new key is added.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_PREFIX = "v1"


class SecretDecryptError(Exception):
    """The ciphertext was tampered with, moved to another row, or sealed by an unknown key."""


def _key_bytes(material: str) -> bytes:
    """A 32-byte key: url-safe base64 of 32 bytes as given, anything else through SHA-256."""
    try:
        raw = base64.urlsafe_b64decode(material + "=" * (-len(material) % 4))
        if len(raw) == 32:
            return raw
    except (ValueError, TypeError):
        pass
    return hashlib.sha256(material.encode()).digest()


def _key_id(key: bytes) -> str:
    return hashlib.sha256(b"ic-key-id:" + key).hexdigest()[:8]


def load_or_create_key_file(path: Path) -> str:
    """The embedded default: one random key in a 0600 file under the data directory."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    material = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    # O_EXCL: when several processes start at once, exactly one writes the key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(material + "\n")
    return material


class SecretBox:
    """Seals with the newest key; opens with whichever listed key sealed the value."""

    def __init__(self, keys: list[str] | tuple[str, ...]) -> None:
        if not keys:
            raise ValueError("at least one secret key is required")
        self._keys = [_key_bytes(k) for k in keys]
        self._by_id = {_key_id(k): AESGCM(k) for k in self._keys}
        self._newest_id = _key_id(self._keys[0])

    def encrypt(self, plaintext: str, *, bound_to: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._by_id[self._newest_id].encrypt(nonce, plaintext.encode(), bound_to.encode())
        body = base64.urlsafe_b64encode(nonce + sealed).decode()
        return f"{_PREFIX}:{self._newest_id}:{body}"

    def decrypt(self, token: str, *, bound_to: str) -> str:
        try:
            prefix, key_id, body = token.split(":", 2)
            blob = base64.urlsafe_b64decode(body)
        except ValueError as exc:
            raise SecretDecryptError("malformed ciphertext") from exc
        aead = self._by_id.get(key_id)
        if prefix != _PREFIX or aead is None:
            raise SecretDecryptError("ciphertext sealed by an unknown key")
        try:
            return aead.decrypt(blob[:12], blob[12:], bound_to.encode()).decode()
        except InvalidTag as exc:
            raise SecretDecryptError("ciphertext does not authenticate for this row") from exc

    def needs_rotation(self, token: str) -> bool:
        return not token.startswith(f"{_PREFIX}:{self._newest_id}:")

    def rotate(self, token: str, *, bound_to: str) -> str:
        return self.encrypt(self.decrypt(token, bound_to=bound_to), bound_to=bound_to)


def secret_box_for(secret_keys: tuple[str, ...], key_file: Path) -> SecretBox:
    return SecretBox(list(secret_keys) or [load_or_create_key_file(key_file)])


def hash_token(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
