import pytest
from cryptography.fernet import Fernet

from sync.crypto import TokenCipher, TokenDecryptionError


def test_round_trip_and_no_plaintext_at_rest():
    cipher = TokenCipher(Fernet.generate_key().decode())
    encrypted = cipher.encrypt("refresh-token-value")
    assert b"refresh-token-value" not in encrypted
    assert cipher.decrypt(encrypted) == "refresh-token-value"


def test_rotation_keeps_old_tokens_readable():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    stored = TokenCipher(old).encrypt("token")
    rotating = TokenCipher(f"{new},{old}")
    assert rotating.decrypt(stored) == "token"
    rotated = rotating.rotate(stored)
    assert TokenCipher(new).decrypt(rotated) == "token"
    with pytest.raises(TokenDecryptionError):
        TokenCipher(old).decrypt(rotated)


def test_wrong_key_is_a_clear_error():
    stored = TokenCipher(Fernet.generate_key().decode()).encrypt("token")
    with pytest.raises(TokenDecryptionError, match="TOKEN_ENCRYPTION_KEY"):
        TokenCipher(Fernet.generate_key().decode()).decrypt(stored)
