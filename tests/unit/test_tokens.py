from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from amplify_stream.auth.tokens import REQUIRED_CLAIMS, Claims, TokenService
from amplify_stream.config import Settings
from amplify_stream.errors import NotReady, Unauthorized

PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

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


# ------------------------------------------------------------ RS256 and EdDSA key files


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pem_private(key: PrivateKey) -> bytes:
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def pem_public(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def new_key(algorithm: str, rsa_bits: int = 2048) -> PrivateKey:
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    return ed25519.Ed25519PrivateKey.generate()


@dataclass
class KeyFiles:
    algorithm: str
    key: PrivateKey
    private: Path
    public: Path

    def settings(self, *, private: bool = True, public: bool = True) -> Settings:
        return Settings(
            _env_file=None,
            jwt_algorithm=self.algorithm,
            jwt_private_key_file=self.private if private else None,
            jwt_public_key_file=self.public if public else None,
            jwt_issuer="amplify-test",
            jwt_audience="amplify-clients",
            access_token_ttl_s=600,
        )


def write_keys(tmp_path: Path, algorithm: str, key: PrivateKey | None = None) -> KeyFiles:
    key = key or new_key(algorithm)
    private, public = tmp_path / f"{algorithm}.key", tmp_path / f"{algorithm}.pub"
    private.write_bytes(pem_private(key))
    public.write_bytes(pem_public(key))
    return KeyFiles(algorithm, key, private, public)


@pytest.fixture(scope="module")
def generated() -> dict[str, PrivateKey]:
    # One key per algorithm for the module: RSA generation is slow.
    return {algorithm: new_key(algorithm) for algorithm in ("RS256", "EdDSA")}


@pytest.fixture(params=["RS256", "EdDSA"])
def keys(request: pytest.FixtureRequest, tmp_path: Path, generated: dict[str, Any]) -> KeyFiles:
    return write_keys(tmp_path, request.param, generated[request.param])


@pytest.fixture(scope="module")
def rsa_keys(tmp_path_factory: pytest.TempPathFactory) -> KeyFiles:
    return write_keys(tmp_path_factory.mktemp("rsa"), "RS256")


def test_asymmetric_issue_then_verify(keys: KeyFiles) -> None:
    tokens = TokenService(keys.settings())
    token, _ = tokens.issue("user-1", "ada")
    assert jwt.get_unverified_header(token)["alg"] == keys.algorithm
    assert tokens.verify(token).user_id == "user-1"
    # Anyone with the public key alone can check it, with any JWT library.
    payload = jwt.decode(
        token, pem_public(keys.key), algorithms=[keys.algorithm], audience="amplify-clients"
    )
    assert payload["sub"] == "user-1"


def test_public_key_only_verifies_but_does_not_issue(keys: KeyFiles) -> None:
    issuer = TokenService(keys.settings(public=False))  # public key derived from the private
    checker = TokenService(keys.settings(private=False))
    token, _ = issuer.issue("user-1", "ada")
    assert checker.verify(token).username == "ada"
    with pytest.raises(NotReady):
        checker.issue("user-1", "ada")


def test_signed_by_another_key_is_refused(keys: KeyFiles, tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    other = write_keys(tmp_path / "other", keys.algorithm)
    token, _ = TokenService(other.settings()).issue("user-1", "ada")
    refused(TokenService(keys.settings()), token)


@pytest.mark.parametrize(
    "bad",
    [
        {"exp": int(time.time()) - 3600},
        {"aud": "someone-else"},
        {"iss": "evil"},
        *({name: None} for name in REQUIRED_CLAIMS),
    ],
)
def test_asymmetric_claims_are_checked(keys: KeyFiles, bad: dict[str, Any]) -> None:
    token = jwt.encode(claims(**bad), keys.key, algorithm=keys.algorithm)
    refused(TokenService(keys.settings()), token)


def test_alg_none_against_asymmetric(keys: KeyFiles) -> None:
    refused(TokenService(keys.settings()), jwt.encode(claims(), "", algorithm="none"))


def test_hs256_signed_with_the_public_key_is_refused(keys: KeyFiles) -> None:
    # The classic confusion attack: the public key (which anyone may have) used as an
    # HMAC secret, hoping the server feeds its "verification key" to HMAC.
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims()).encode())
    for secret in (pem_public(keys.key), pem_public(keys.key).strip()):
        mac = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
        refused(TokenService(keys.settings()), f"{header}.{body}.{b64url(mac)}")


def test_the_other_asymmetric_algorithm_is_refused(
    tmp_path: Path, generated: dict[str, PrivateKey]
) -> None:
    rs = write_keys(tmp_path, "RS256", generated["RS256"])
    ed = write_keys(tmp_path, "EdDSA", generated["EdDSA"])
    refused(TokenService(rs.settings()), TokenService(ed.settings()).issue("u", "ada")[0])
    refused(TokenService(ed.settings()), TokenService(rs.settings()).issue("u", "ada")[0])


def test_hs256_service_refuses_rs256_tokens(tokens: TokenService, rsa_keys: KeyFiles) -> None:
    refused(tokens, jwt.encode(claims(), rsa_keys.key, algorithm="RS256"))


# ------------------------------------------------------------ key files refused at start-up


def test_missing_key_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="KEY_FILE"):
        TokenService(Settings(_env_file=None, jwt_algorithm="EdDSA"))
    missing = Settings(_env_file=None, jwt_algorithm="EdDSA", jwt_private_key_file=tmp_path / "x")
    with pytest.raises(ValueError, match="cannot read the key file"):
        TokenService(missing)


def test_unreadable_key_file(tmp_path: Path) -> None:
    # A directory: unreadable as a file even for root (chmod would not stop root).
    settings = Settings(_env_file=None, jwt_algorithm="RS256", jwt_public_key_file=tmp_path)
    with pytest.raises(ValueError, match="cannot read the key file"):
        TokenService(settings)


def test_not_a_key(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    settings = Settings(_env_file=None, jwt_algorithm="RS256", jwt_private_key_file=junk)
    with pytest.raises(ValueError, match="not an unencrypted PEM private key") as info:
        TokenService(settings)
    assert "not a key" not in str(info.value)  # never the file's content


def test_encrypted_private_key(tmp_path: Path) -> None:
    key = new_key("EdDSA")
    path = tmp_path / "enc.pem"
    path.write_bytes(
        key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"passphrase"))
    )
    settings = Settings(_env_file=None, jwt_algorithm="EdDSA", jwt_private_key_file=path)
    with pytest.raises(ValueError, match="unencrypted"):
        TokenService(settings)


def test_key_of_the_wrong_type(tmp_path: Path) -> None:
    ed = write_keys(tmp_path, "EdDSA")
    settings = Settings(_env_file=None, jwt_algorithm="RS256", jwt_private_key_file=ed.private)
    with pytest.raises(ValueError, match="not an RSA key"):
        TokenService(settings)
    settings = Settings(_env_file=None, jwt_algorithm="RS256", jwt_public_key_file=ed.public)
    with pytest.raises(ValueError, match="not an RSA key"):
        TokenService(settings)


def test_keys_that_are_not_a_pair(keys: KeyFiles, tmp_path: Path) -> None:
    keys.public.write_bytes(pem_public(new_key(keys.algorithm)))
    with pytest.raises(ValueError, match="is not the public key of"):
        TokenService(keys.settings())


def test_short_rsa_key(tmp_path: Path) -> None:
    weak = write_keys(tmp_path, "RS256", new_key("RS256", rsa_bits=1024))
    with pytest.raises(ValueError, match="at least 2048 bits"):
        TokenService(weak.settings())
