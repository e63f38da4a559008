from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest

from amplify_stream.auth.tokens import Claims, TokenService
from amplify_stream.config import Settings
from amplify_stream.errors import Unauthorized

SECRET = "s" * 64  # long enough for HS512 too (the alg-pinning test)
OTHER_SECRET = "o" * 64


@pytest.fixture
def settings() -> Settings:
    return Settings(
        _env_file=None,
        jwt_secret=SECRET,
        jwt_issuer="amplify-test",
        jwt_audience="amplify-clients",
        access_token_ttl_s=600,
    )


@pytest.fixture
def tokens(settings: Settings) -> TokenService:
    return TokenService(settings)


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "user-1",
        "name": "ada",
        "iat": now,
        "exp": now + 600,
        "iss": "amplify-test",
        "aud": "amplify-clients",
        "jti": "token-1",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def forge(payload: dict[str, Any], key: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(payload, key, algorithm=algorithm)


def refused(tokens: TokenService, token: str) -> Unauthorized:
    with pytest.raises(Unauthorized) as info:
        tokens.verify(token)
    # One generic message, and never the token itself.
    assert info.value.message == "invalid or expired access token"
    if len(token) > 8:
        assert token not in str(info.value)
    return info.value


def test_issue_then_verify(tokens: TokenService) -> None:
    token, expires_in = tokens.issue("user-1", "ada")
    assert expires_in == 600
    got = tokens.verify(token)
    assert isinstance(got, Claims)
    assert (got.user_id, got.username) == ("user-1", "ada")
    assert got.expires_at - time.time() == pytest.approx(600, abs=5)

    payload = jwt.decode(token, options={"verify_signature": False})
    assert set(payload) == {"sub", "name", "iat", "exp", "iss", "aud", "jti"}
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_each_token_has_its_own_id(tokens: TokenService) -> None:
    a, b = tokens.issue("user-1", "ada")[0], tokens.issue("user-1", "ada")[0]
    assert tokens.verify(a).token_id != tokens.verify(b).token_id


def test_expired(settings: Settings) -> None:
    two_hours_ago = TokenService(settings, clock=lambda: time.time() - 7200)
    token, _ = two_hours_ago.issue("user-1", "ada")
    refused(TokenService(settings), token)


def test_small_clock_skew_is_tolerated(settings: Settings) -> None:
    # Issued by a gateway whose clock runs 5 s ahead of ours.
    ahead = TokenService(settings, clock=lambda: time.time() + 5)
    token, _ = ahead.issue("user-1", "ada")
    assert TokenService(settings).verify(token).user_id == "user-1"


def test_issued_in_the_future(tokens: TokenService) -> None:
    later = int(time.time()) + 3600
    refused(tokens, forge(claims(iat=later, exp=later + 600)))


def test_wrong_signature(tokens: TokenService) -> None:
    refused(tokens, forge(claims(), key=OTHER_SECRET))


def test_wrong_audience(tokens: TokenService) -> None:
    refused(tokens, forge(claims(aud="someone-else")))
    # A list holding our audience is not accepted either (strict_aud).
    refused(tokens, forge(claims(aud=["amplify-clients", "someone-else"])))


def test_wrong_issuer(tokens: TokenService) -> None:
    refused(tokens, forge(claims(iss="evil")))


def test_alg_none(tokens: TokenService) -> None:
    refused(tokens, jwt.encode(claims(), "", algorithm="none"))
    # Hand-made, with an empty signature, as an attacker would send it.
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(claims()).encode()).rstrip(b"=")
    refused(tokens, f"{header.decode()}.{body.decode()}.")


def test_other_hmac_algorithm_with_the_right_key(tokens: TokenService) -> None:
    refused(tokens, forge(claims(), algorithm="HS512"))


def test_tampered_payload(tokens: TokenService) -> None:
    token, _ = tokens.issue("user-1", "ada")
    header, _, signature = token.split(".")
    evil = base64.urlsafe_b64encode(json.dumps(claims(sub="user-2")).encode()).rstrip(b"=")
    refused(tokens, f"{header}.{evil.decode()}.{signature}")


@pytest.mark.parametrize("missing", ["sub", "name", "iat", "exp", "iss", "aud", "jti"])
def test_missing_claim(tokens: TokenService, missing: str) -> None:
    refused(tokens, forge(claims(**{missing: None})))


@pytest.mark.parametrize(
    "bad", [{"sub": 42}, {"sub": ""}, {"name": ""}, {"name": ["ada"]}, {"jti": 7}]
)
def test_malformed_claims(tokens: TokenService, bad: dict[str, Any]) -> None:
    refused(tokens, forge(claims(**bad)))


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "x" * 5000])
def test_garbage(tokens: TokenService, garbage: str) -> None:
    refused(tokens, garbage)


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        TokenService(Settings(_env_file=None, jwt_secret="too-short"))
