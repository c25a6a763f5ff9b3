"""Encryption at rest for OAuth tokens.

`TOKEN_ENCRYPTION_KEY` holds one Fernet key, or several separated by commas,
newest first. New tokens are encrypted with the first key; any listed key can
decrypt. To rotate: put a new key in front, re-encrypt the stored tokens
(`TokenCipher.rotate`), then drop the old key.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class TokenDecryptionError(RuntimeError):
    """A stored token was encrypted with a key that is no longer configured."""


class TokenCipher:
    def __init__(self, keys: str) -> None:
        self._fernet = MultiFernet([Fernet(key.strip().encode()) for key in keys.split(",")])

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, ciphertext: bytes) -> str:
        try:
            return self._fernet.decrypt(ciphertext).decode()
        except InvalidToken:
            raise TokenDecryptionError(
                "a stored token cannot be decrypted with TOKEN_ENCRYPTION_KEY: "
                "was the key changed without keeping the old one after a comma?"
            ) from None

    def rotate(self, ciphertext: bytes) -> bytes:
        """Re-encrypt with the newest key (a no-op in effect if it already is)."""
        try:
            return self._fernet.rotate(ciphertext)
        except InvalidToken:
            raise TokenDecryptionError("a stored token cannot be decrypted for rotation") from None
