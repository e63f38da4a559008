from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from amplify_stream.auth.models import Credentials, UserOut
from amplify_stream.auth.passwords import MAX_PASSWORD_BYTES, PasswordHasher
from amplify_stream.store.records import UserRecord


@pytest.fixture
def hasher() -> PasswordHasher:
    return PasswordHasher(rounds=4)


async def test_hash_then_verify(hasher: PasswordHasher) -> None:
    hashed = await hasher.hash("correct horse battery")
    assert hashed.startswith("$2b$04$")
    assert "correct horse" not in hashed
    assert await hasher.verify("correct horse battery", hashed)
    assert not await hasher.verify("correct horse batterY", hashed)


async def test_salted(hasher: PasswordHasher) -> None:
    assert await hasher.hash("same password") != await hasher.hash("same password")


async def test_unknown_user_is_false(hasher: PasswordHasher) -> None:
    assert not await hasher.verify("anything at all", None)


async def test_72_bytes_is_the_limit(hasher: PasswordHasher) -> None:
    at_limit = "é" * (MAX_PASSWORD_BYTES // 2)  # 36 characters, 72 bytes
    assert await hasher.verify(at_limit, await hasher.hash(at_limit))
    # Not silently truncated: one more byte is refused, not hashed as its first 72.
    with pytest.raises(ValueError, match="72 bytes"):
        await hasher.hash(at_limit + "a")
    with pytest.raises(ValueError, match="72 bytes"):
        await hasher.hash("a" * 100)


async def test_too_long_or_nul_never_verifies(hasher: PasswordHasher) -> None:
    hashed = await hasher.hash("a" * 72)
    assert not await hasher.verify("a" * 73, hashed)
    assert not await hasher.verify("a" * 72 + "\x00", hashed)
    with pytest.raises(ValueError, match="NUL"):
        await hasher.hash("abc\x00defgh")


async def test_malformed_stored_hash_is_false(hasher: PasswordHasher) -> None:
    assert not await hasher.verify("password1", "not-a-bcrypt-hash")


async def test_needs_rehash_when_cost_changes() -> None:
    old = await PasswordHasher(rounds=4).hash("password1")
    assert not PasswordHasher(rounds=4).needs_rehash(old)
    assert PasswordHasher(rounds=5).needs_rehash(old)


async def test_unknown_user_costs_as_much_as_wrong_password() -> None:
    # A higher cost than elsewhere so bcrypt's time dominates the noise (~15 ms a check).
    hasher = PasswordHasher(rounds=8)
    hashed = await hasher.hash("the real password")
    times: dict[str | None, list[float]] = {hashed: [], None: []}
    for _ in range(7):
        for stored in times:  # interleaved, so a burst of load hits both alike
            start = time.perf_counter()
            assert not await hasher.verify("a wrong password", stored)
            times[stored].append(time.perf_counter() - start)
    # The fastest run is the cost without noise. Without the dummy check an unknown user
    # would answer about 1000 times faster; a dummy at another cost would be 2x off or more.
    ratio = min(times[None]) / min(times[hashed])
    assert 0.5 < ratio < 2.0


# ------------------------------------------------------------ Credentials


def test_credentials_accept_a_good_body() -> None:
    creds = Credentials.model_validate(
        {"username": "Ada.L_ovelace-1", "password": "12345678", "grant_type": "password"}
    )
    assert creds.username == "Ada.L_ovelace-1"
    assert creds.password.get_secret_value() == "12345678"
    assert "12345678" not in repr(creds)


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("ab", "12345678", "at least 3"),
        ("a" * 65, "12345678", "at most 64"),
        ("bob smith", "12345678", "pattern"),
        ("bób", "12345678", "pattern"),
        ("bob", "1234567", "at least 8 characters"),
        ("bob", "é" * 37, "at most 72 bytes"),
        ("bob", "abc\x00defgh", "NUL"),
        ("bob", "\ud800abcdefgh", "valid Unicode"),
    ],
)
def test_credentials_reject(username: str, password: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        Credentials(username=username, password=password)
    assert message in str(info.value)
    # The password never appears in the error's text (logs, tracebacks).
    if len(password) > 3:
        assert password not in str(info.value)


def test_user_out_from_record() -> None:
    from datetime import UTC, datetime

    record = UserRecord("id-1", "ada", "$2b$04$hash", datetime.now(UTC))
    assert UserOut.model_validate(record).model_dump() == {"id": "id-1", "username": "ada"}
    assert "$2b$" not in repr(record)
