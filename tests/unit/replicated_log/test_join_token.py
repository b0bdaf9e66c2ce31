"""Join tokens: format, CA pinning, verify, rotate, revoke; only a hash is stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesoslite.replicated_log.join_token import (
    InvalidJoinTokenError,
    JoinToken,
    JoinTokenFile,
    hash_secret,
    verify_join_token,
)

CA = "ab" * 32
OTHER_CA = "cd" * 32


def test_a_token_round_trips_through_its_text() -> None:
    text = f"K10{CA}::{'0f' * 24}"
    parsed = JoinToken.parse(text)
    assert parsed == JoinToken(CA, "0f" * 24)
    assert str(parsed) == text
    assert JoinToken.parse(f"  {text}\n") == parsed


@pytest.mark.parametrize(
    "text",
    ["", "K10::abc", f"K10{CA}:{'0f' * 24}", f"K11{CA}::{'0f' * 24}", f"K10{CA[:-1]}::{'0f' * 24}"],
)
def test_malformed_tokens_are_refused_with_a_hint(text: str) -> None:
    with pytest.raises(InvalidJoinTokenError, match="K10"):
        JoinToken.parse(text)


def test_the_token_pins_the_ca() -> None:
    token = JoinToken(CA, "00" * 24)
    assert token.pins(CA)
    assert token.pins(CA.upper())
    assert not token.pins(OTHER_CA)


def test_rotate_verify_and_revoke(tmp_path: Path) -> None:
    store = JoinTokenFile(tmp_path / "tls" / "join-token.sha256")
    assert store.stored_hash() is None
    first = store.rotate(CA)
    assert first.ca_fingerprint_sha256 == CA
    assert store.verify(JoinToken.parse(str(first)), CA)

    stored = (tmp_path / "tls" / "join-token.sha256").read_text()
    assert first.secret not in stored, "only a hash is stored"
    assert stored.strip() == hash_secret(first.secret)

    second = store.rotate(CA)
    assert second.secret != first.secret
    assert store.verify(second, CA)
    assert not store.verify(first, CA), "rotation invalidates the old token"

    store.revoke()
    assert not store.verify(second, CA)
    store.revoke()  # revoking twice is fine


def test_a_token_for_another_ca_is_refused_even_with_the_right_secret() -> None:
    token = JoinToken(CA, "12" * 24)
    stored = hash_secret(token.secret)
    assert verify_join_token(token, stored, CA)
    assert not verify_join_token(JoinToken(OTHER_CA, token.secret), stored, CA)
    assert not verify_join_token(JoinToken(CA, "13" * 24), stored, CA)
