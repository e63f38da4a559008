"""Security of the live app: forged tokens on every protected route and the socket, the
security headers on every kind of answer, CORS and the socket's origin check, what never
reaches the logs, and the settings production refuses to start with."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import json
import logging
import re
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from pydantic import ValidationError

from amplify_stream.config import Settings
from amplify_stream.gateway import keys
from amplify_stream.gateway.app import create_app
from amplify_stream.logs import configure_logging
from tests.integration.conftest import Service
from tests.support import sign_up, wait_until

StartService = Callable[..., Awaitable[Service]]
PROTOCOL_HEADER = "Sec-WebSocket-Protocol"
MEMORY_ONLY = pytest.mark.parametrize("bus_kind", ["memory"], indirect=True)
PASSWORD = "correct horse battery"
STRONG_SECRET = "0123456789abcdef" * 4
# Routes anyone may call; every other route must refuse a forged token.
PUBLIC_PATHS = {
    "/",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/rules",
    "/v1/auth/register",
    "/v1/auth/token",
}
PUBLIC_PREFIXES = ("/static/",)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_by_hand(payload: dict[str, Any], key: bytes, alg: str = "HS256") -> str:
    """What an attacker builds without a JWT library (any key bytes, any ``alg``)."""
    head = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64url(json.dumps(payload).encode())
    mac = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(mac)}"


def claims_for(settings: Settings, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "user-1",
        "name": "ada",
        "iat": now,
        "exp": now + 600,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "jti": "forged",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def forged_tokens(settings: Settings, real: str) -> dict[str, str]:
    """Tokens an attacker could send, each wrong in one way; ``real`` is a genuine one."""
    assert settings.jwt_secret is not None
    secret = settings.jwt_secret.get_secret_value()
    attacker_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    head, payload, signature = real.split(".")
    victim = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    tampered = b64url(json.dumps(victim | {"sub": "someone-else"}).encode())

    def signed(**overrides: Any) -> str:
        return jwt.encode(claims_for(settings, **overrides), secret, algorithm="HS256")

    with warnings.catch_warnings():  # the test secret is short for HS512; irrelevant here
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        hs512 = jwt.encode(claims_for(settings), secret, algorithm="HS512")

    return {
        "garbage": "not-a-token",
        "alg-none": jwt.encode(claims_for(settings), "", algorithm="none"),
        "alg-none-by-hand": hs256_by_hand(claims_for(settings), b"", alg="none").rsplit(".", 1)[0]
        + ".",
        "wrong-secret": jwt.encode(claims_for(settings), "w" * 64, algorithm="HS256"),
        "hs512-right-secret": hs512,
        "attacker-rsa": jwt.encode(claims_for(settings), attacker_rsa, algorithm="RS256"),
        "expired": signed(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
        "wrong-audience": signed(aud="someone-else"),
        "wrong-issuer": signed(iss="evil"),
        "missing-exp": signed(exp=None),
        "tampered": f"{head}.{tampered}.{signature}",
    }


def protected_routes(svc: Service) -> list[tuple[str, str]]:
    """(method, path) of every route that needs a token, path parameters filled in."""
    found = set()
    for route in svc.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            continue
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            continue
        found.add((route.method, re.sub(r"\{[^}]+\}", "s-1", path)))
    return sorted(found)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ws_upgrade_headers(**extra: str) -> dict[str, str]:
    # A real upgrade request, sent with a plain client so a refusal's body can be read.
    return {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(b"0123456789abcdef").decode(),
        **extra,
    }


def assert_error(status: int, body: dict[str, Any], expected: int, code: str) -> None:
    assert status == expected, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str)
    assert set(body["error"]) <= {"code", "message", "details", "retryable"}


def assert_security_headers(headers: Any, *, production: bool = False) -> None:
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    csp = headers["Content-Security-Policy"]
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self' ws: wss:",
        "media-src 'self' blob:",
        "frame-ancestors 'none'",
    ):
        assert directive in csp, csp
    assert ("Strict-Transport-Security" in headers) is production


# ------------------------------------------------------------------ forged tokens


@MEMORY_ONLY
async def test_forged_tokens_are_refused_on_every_protected_route(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service()
    real = await sign_up(session, svc.base, "ada")
    routes = protected_routes(svc)
    assert ("GET", "/v1/auth/me") in routes
    assert ("POST", "/v1/stories") in routes
    assert ("GET", "/v1/stream") in routes
    assert ("GET", "/v1/stories/s-1/events") in routes
    body = {"text": "A short story.", "audio": False}
    for name, token in forged_tokens(svc.settings, real).items():
        for method, path in routes:
            placements = [({"headers": auth(token)}, "header")]
            if method == "GET":
                placements.append(({"params": {"access_token": token}}, "query"))
            for kwargs, where in placements:
                async with session.request(
                    method, svc.base + path, json=body if method == "POST" else None, **kwargs
                ) as res:
                    text = await res.text()
                    assert res.status == 401, (name, method, path, where, text)
                    assert_error(res.status, json.loads(text), 401, "unauthorized")
                    assert token not in text
                    assert_security_headers(res.headers)
    # The control: the genuine token passes where every forgery failed.
    async with session.get(f"{svc.base}/v1/auth/me", headers=auth(real)) as res:
        assert res.status == 200


@MEMORY_ONLY
async def test_forged_tokens_cannot_open_the_socket(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service()
    real = await sign_up(session, svc.base, "ada")
    url = f"{svc.base}/v1/stream"
    for name, token in forged_tokens(svc.settings, real).items():
        placements: list[dict[str, Any]] = [
            {"headers": ws_upgrade_headers(Authorization=f"Bearer {token}")},
            {"headers": ws_upgrade_headers(**{PROTOCOL_HEADER: f"amplify.v1, bearer.{token}"})},
            {"headers": ws_upgrade_headers(), "params": {"access_token": token}},
        ]
        for kwargs in placements:
            async with session.get(url, **kwargs) as res:
                body = await res.json()
                assert res.status == 401, (name, kwargs, body)
                assert_error(res.status, body, 401, "unauthorized")
                assert_security_headers(res.headers)
    # And through a real WebSocket client: the handshake fails with 401.
    ws_url = svc.base.replace("http", "ws", 1) + "/v1/stream"
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await session.ws_connect(ws_url, protocols=("amplify.v1", "bearer.not-a-token"))
    assert info.value.status == 401


def key_files(tmp_path: Path, algorithm: str) -> tuple[Path, Path, bytes]:
    key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if algorithm == "RS256"
        else ed25519.Ed25519PrivateKey.generate()
    )
    private, public = tmp_path / f"{algorithm}.pem", tmp_path / f"{algorithm}.pub.pem"
    private.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    public_pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    public.write_bytes(public_pem)
    return private, public, public_pem


@MEMORY_ONLY
@pytest.mark.parametrize("algorithm", ["RS256", "EdDSA"])
async def test_key_confusion_against_asymmetric_keys(
    service: StartService, session: aiohttp.ClientSession, tmp_path: Path, algorithm: str
) -> None:
    private, public, public_pem = key_files(tmp_path, algorithm)
    svc = await service(
        jwt_algorithm=algorithm, jwt_private_key_file=private, jwt_public_key_file=public
    )
    real = await sign_up(session, svc.base, "ada")
    assert jwt.get_unverified_header(real)["alg"] == algorithm
    async with session.get(f"{svc.base}/v1/auth/me", headers=auth(real)) as res:
        assert res.status == 200
    # HS256 "signed" with the public key, which anyone may hold; and alg none.
    confused = [
        hs256_by_hand(claims_for(svc.settings), public_pem),
        hs256_by_hand(claims_for(svc.settings), public_pem.strip()),
        jwt.encode(claims_for(svc.settings), "", algorithm="none"),
    ]
    for token in confused:
        async with session.get(f"{svc.base}/v1/auth/me", headers=auth(token)) as res:
            assert_error(res.status, await res.json(), 401, "unauthorized")
        async with session.get(
            f"{svc.base}/v1/stream", headers=ws_upgrade_headers(Authorization=f"Bearer {token}")
        ) as res:
            assert_error(res.status, await res.json(), 401, "unauthorized")


# ------------------------------------------------------------------ security headers


@MEMORY_ONLY
async def test_security_headers_on_every_kind_of_answer(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service()
    token = await sign_up(session, svc.base, "ada")
    answers = [
        ("GET", "/healthz", {}, 200),
        ("GET", "/v1/auth/me", {"headers": auth(token)}, 200),
        ("GET", "/v1/auth/me", {}, 401),
        ("GET", "/no/such/route", {}, 404),
        ("POST", "/healthz", {}, 405),
        ("POST", "/v1/stories", {"headers": auth(token), "data": b"{"}, 415),
    ]
    for method, path, kwargs, status in answers:
        async with session.request(method, svc.base + path, **kwargs) as res:
            assert res.status == status, (path, await res.text())
            assert res.content_type == "application/json"
            assert_security_headers(res.headers)
            assert res.headers["Cache-Control"] == "no-store"

    async with session.get(f"{svc.base}/") as res:
        assert res.status == 200
        assert res.content_type == "text/html"
        assert_security_headers(res.headers)
        assert res.headers["Cache-Control"] == "no-cache"  # the page's own choice is kept
    async with session.get(f"{svc.base}/static/editor.js") as res:
        assert res.status == 200
        assert_security_headers(res.headers)

    # SSE: the headers go out before the first event.
    sse = {**auth(token), "Accept": "text/event-stream"}
    body = {"text": "A short story.", "audio": False}
    async with session.post(f"{svc.base}/v1/stories", json=body, headers=sse) as res:
        assert res.status == 200
        assert res.content_type == "text/event-stream"
        assert_security_headers(res.headers)

    # The WebSocket handshake (101) as it comes off the wire.
    host, port = svc.base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        request = "".join(
            f"{k}: {v}\r\n"
            for k, v in ws_upgrade_headers(Host=f"{host}:{port}", **auth(token)).items()
        )
        writer.write(f"GET /v1/stream HTTP/1.1\r\n{request}\r\n".encode())
        async with asyncio.timeout(10):
            head = (await reader.readuntil(b"\r\n\r\n")).decode()
    finally:
        writer.close()
        await writer.wait_closed()
    status_line, *lines = head.strip().split("\r\n")
    assert " 101 " in status_line, head
    assert_security_headers(dict(line.split(": ", 1) for line in lines))


@MEMORY_ONLY
async def test_hsts_only_in_production(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service(env="production", jwt_secret=STRONG_SECRET)
    for path in ("/healthz", "/", "/no/such/route"):
        async with session.get(svc.base + path) as res:
            assert_security_headers(res.headers, production=True)
            assert "max-age=" in res.headers["Strict-Transport-Security"]


# ------------------------------------------------------------------ CORS and origins

ALLOWED = "https://editor.example"
FOREIGN = "https://evil.example"


@MEMORY_ONLY
async def test_cors_allowlist(service: StartService, session: aiohttp.ClientSession) -> None:
    svc = await service(cors_origins=[ALLOWED, "https://other.example"])
    token = await sign_up(session, svc.base, "ada")
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    async with session.options(
        f"{svc.base}/v1/stories", headers={"Origin": ALLOWED, **preflight}
    ) as res:
        assert res.status == 200
        assert res.headers["Access-Control-Allow-Origin"] == ALLOWED
        assert "POST" in res.headers["Access-Control-Allow-Methods"]
        allowed_headers = res.headers["Access-Control-Allow-Headers"].lower()
        assert "authorization" in allowed_headers
        assert "content-type" in allowed_headers
        assert "Access-Control-Allow-Credentials" not in res.headers
        assert_security_headers(res.headers)
    async with session.get(
        f"{svc.base}/v1/auth/me", headers={"Origin": ALLOWED, **auth(token)}
    ) as res:
        assert res.status == 200
        assert res.headers["Access-Control-Allow-Origin"] == ALLOWED

    async with session.options(
        f"{svc.base}/v1/stories", headers={"Origin": FOREIGN, **preflight}
    ) as res:
        assert res.status == 403
        assert "Access-Control-Allow-Origin" not in res.headers
        assert_error(res.status, await res.json(), 403, "forbidden")
    async with session.get(
        f"{svc.base}/v1/auth/me", headers={"Origin": FOREIGN, **auth(token)}
    ) as res:
        assert "Access-Control-Allow-Origin" not in res.headers


@MEMORY_ONLY
async def test_development_default_is_the_pages_own_origin(service: StartService) -> None:
    svc = await service()
    assert svc.settings.cors_origins == [svc.settings.public_origin]


@MEMORY_ONLY
async def test_socket_refuses_foreign_origins(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service(cors_origins=[ALLOWED])
    token = await sign_up(session, svc.base, "ada")
    url = f"{svc.base}/v1/stream"
    for origin in (FOREIGN, "null", "https://editor.example.evil.example", "http://editor.example"):
        headers = ws_upgrade_headers(Origin=origin, **auth(token))
        async with session.get(url, headers=headers) as res:
            # Refused before the token is even looked at: a valid token does not help.
            assert_error(res.status, await res.json(), 403, "forbidden")
            assert_security_headers(res.headers)
    ws_url = svc.base.replace("http", "ws", 1) + "/v1/stream"
    # The allowlisted origin, the page's own origin (same host), and no Origin (not a browser).
    for origin in (ALLOWED, svc.base, None):
        async with session.ws_connect(ws_url, headers=auth(token), origin=origin) as ws:
            await ws.send_json({"type": "ping", "request_id": "r1"})
            assert (await ws.receive_json(timeout=10))["type"] == "pong"


# ------------------------------------------------------------------ logs


@pytest.fixture
def logs() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """(raw, redacted): everything logged at DEBUG and up, as it was offered to the
    handlers, and as the set-up the CLI installs writes it."""
    raw, redacted = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    level = root.level
    # First in line, so it sees each record before the redacting filter rewrites it.
    raw_handler = logging.StreamHandler(raw)
    root.handlers.insert(0, raw_handler)
    handler = configure_logging("DEBUG", stream=redacted)
    try:
        yield raw, redacted
    finally:
        root.removeHandler(handler)
        root.removeHandler(raw_handler)
        root.setLevel(level)


@MEMORY_ONLY
async def test_no_token_or_password_reaches_the_logs(
    service: StartService,
    session: aiohttp.ClientSession,
    logs: tuple[io.StringIO, io.StringIO],
) -> None:
    raw, redacted = logs
    svc = await service()
    creds = {"username": "ada", "password": PASSWORD}
    async with session.post(f"{svc.base}/v1/auth/register", json=creds) as res:
        assert res.status == 201
    async with session.post(f"{svc.base}/v1/auth/token", data=creds) as res:
        token = (await res.json())["access_token"]
    async with session.post(f"{svc.base}/v1/auth/token", json=creds | {"password": "x"}) as res:
        assert res.status == 401
    ws_url = svc.base.replace("http", "ws", 1) + "/v1/stream"
    async with session.ws_connect(ws_url, params={"access_token": token}) as ws:
        await ws.send_json({"type": "ping"})
        await ws.receive_json(timeout=10)
    # Only the bearer subprotocol: aiohttp logs the client's list as a mismatch.
    async with session.ws_connect(ws_url, protocols=(f"bearer.{token}",)) as ws:
        await ws.send_json({"type": "ping"})
        await ws.receive_json(timeout=10)
    bad = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for kwargs in ({"headers": auth(bad)}, {"params": {"access_token": bad}}):
        async with session.get(f"{svc.base}/v1/stories/s-1/events", **kwargs) as res:
            assert res.status == 401
    # The access line of the last request is written after its answer has been sent.
    last = f"GET /v1/stories/s-1/events?access_token={bad} "
    await wait_until(lambda: last in raw.getvalue(), "the access line of the last request")

    text = redacted.getvalue()
    assert "aiohttp.access" in text and "[REDACTED]" in text, text
    for secret in (token, bad, PASSWORD, token.split(".")[2], bad.split(".")[1], "$2b$"):
        assert secret not in text
    # The secrets were offered to the logs (the access line, aiohttp's subprotocol
    # warning), so this test would catch a leak.
    assert token in raw.getvalue()
    assert bad in raw.getvalue()


# ------------------------------------------------------------------ production start-up


def production(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"env": "production", "jwt_secret": STRONG_SECRET}
    return Settings(_env_file=None, **(values | overrides))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"jwt_secret": None}, "AMPLIFY_JWT_SECRET is required"),
        ({"jwt_secret": "short-but-varied-123"}, "at least 32 bytes"),
        ({"jwt_secret": "x" * 64}, "different characters"),
        ({"jwt_secret": "changeme" * 8}, "different characters"),
        ({"cors_origins": "*"}, "must not be \\*"),
        ({"cors_origins": f"{ALLOWED},*"}, "must not be \\*"),
        ({"cors_origins": "http://editor.example"}, "must be https://"),
        ({"jwt_algorithm": "RS256"}, "AMPLIFY_JWT_PRIVATE_KEY_FILE"),
        ({"jwt_algorithm": "EdDSA", "jwt_secret": None}, "AMPLIFY_JWT_PUBLIC_KEY_FILE"),
    ],
)
def test_production_refuses(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        production(**overrides)
    # The refusal never prints the settings it was given.
    assert STRONG_SECRET not in str(info.value)


@pytest.mark.parametrize(
    "origins",
    [
        "https://editor.example",
        "https://editor.example:8443,https://other.example",
        "http://localhost:3000",
        "http://127.0.0.1:8080",
        "http://[::1]:8080",
    ],
)
def test_production_accepts(origins: str) -> None:
    assert production(cors_origins=origins).cors_origins == origins.split(",")


def test_production_default_allows_no_other_origin() -> None:
    # The page the gateway serves is same-origin and needs no CORS.
    assert production().cors_origins == []


@pytest.mark.parametrize(
    "origin",
    ["editor.example", "https://editor.example/app", "ftp://x", "https://", "null", "http://x:y"],
)
def test_origins_must_be_origins(origin: str) -> None:
    with pytest.raises(ValidationError, match="CORS origin"):
        Settings(_env_file=None, cors_origins=origin)


def test_origins_are_normalized() -> None:
    settings = Settings(_env_file=None, cors_origins=" HTTPS://Editor.Example/ ,http://x:1")
    assert settings.cors_origins == ["https://editor.example", "http://x:1"]


def test_create_app_refuses_unreadable_key_files(tmp_path: Path) -> None:
    private, public, _ = key_files(tmp_path, "EdDSA")
    settings = production(jwt_algorithm="EdDSA", jwt_private_key_file=tmp_path / "missing.pem")
    with pytest.raises(ValueError, match="cannot read the key file"):
        create_app(settings)
    settings = production(jwt_algorithm="EdDSA", jwt_public_key_file=tmp_path)  # a directory
    with pytest.raises(ValueError, match="cannot read the key file"):
        create_app(settings)
    # Readable files: it starts (public-key-only gateways too).
    create_app(production(jwt_algorithm="EdDSA", jwt_private_key_file=private))
    create_app(production(jwt_algorithm="EdDSA", jwt_public_key_file=public))


def test_create_app_refuses_settings_changed_after_validation() -> None:
    settings = production()
    settings.cors_origins = ["*"]  # assignment is not validated; create_app checks again
    with pytest.raises(ValueError, match="must not be \\*"):
        create_app(settings)


@MEMORY_ONLY
async def test_a_hash_made_at_another_cost_is_renewed_at_the_next_sign_in(
    service: Callable[..., Awaitable[Service]], session: aiohttp.ClientSession
) -> None:
    creds = {"username": "ada", "password": PASSWORD}
    old = await service(bcrypt_rounds=4)
    async with session.post(f"{old.base}/v1/auth/register", json=creds) as res:
        assert res.status == 201
    await old.stop()
    new = await service(bcrypt_rounds=5)  # the same database, a higher cost
    users = new.app[keys.USERS]
    before = await users.by_username("ada")
    assert before is not None and before.password_hash.startswith("$2b$04$")
    async with session.post(f"{new.base}/v1/auth/token", json=creds | {"password": "x"}) as res:
        assert res.status == 401  # a wrong password renews nothing
    assert (await users.by_username("ada")) == before
    for _ in range(2):
        async with session.post(f"{new.base}/v1/auth/token", json=creds) as res:
            assert res.status == 200
    after = await users.by_username("ada")
    assert after is not None and after.password_hash.startswith("$2b$05$")
    assert await new.app[keys.PASSWORDS].verify(PASSWORD, after.password_hash)
