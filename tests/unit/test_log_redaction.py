from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from amplify_stream.gateway.access_log import PathOnlyAccessLogger
from amplify_stream.logs import REDACTED, RedactingFilter, configure_logging, redact

TOKEN = jwt.encode({"sub": "user-1", "exp": 2_000_000_000}, "k" * 32, algorithm="HS256")
PASSWORD = "correct horse battery"
HASH = "$2b$04$CGWy4V0AlXl8Z1wCd/AGAut7ofPZMJkzMisT7LSoax2C61KCaC5zS"


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: Bearer {TOKEN}",
        f"authorization: bearer {TOKEN}",
        f"Authorization: Bearer opaque-token-{'z' * 20}",
        f"GET /v1/stream?access_token={TOKEN} HTTP/1.1",
        f"GET /v1/stories/s1/events?cursor=0-1&access_token={TOKEN}&x=1 HTTP/1.1",
        f"Client protocols ['amplify.v1', 'bearer.{TOKEN}'] don't overlap",
        f"refused {TOKEN}",
        # alg "none": an empty signature segment.
        f"refused {TOKEN.rsplit('.', 1)[0]}.",
        "three segments " + ".".join(["A1b2C3d4E5f6G7h8i9"] * 3),
    ],
)
def test_tokens_are_redacted(text: str) -> None:
    clean = redact(text)
    assert REDACTED in clean
    assert TOKEN not in clean
    assert TOKEN.split(".")[1] not in clean  # not even the payload
    assert "z" * 20 not in clean
    assert "A1b2C3d4E5f6G7h8i9" not in clean


@pytest.mark.parametrize(
    "text",
    [
        f'{{"username": "ada", "password": "{PASSWORD}"}}',
        f'{{"username":"ada","password":"{PASSWORD}"}}',
        f"{{'username': 'ada', 'password': '{PASSWORD}'}}",
        '{"username": "ada", "password": "correct \\"horse\\" battery"}',
        f"username=ada&password={PASSWORD.replace(' ', '+')}&grant_type=password",
        f'{{"access_token": "{PASSWORD}", "token_type": "bearer"}}',
        f"INSERT INTO users VALUES (?, ?) ('ada', '{HASH}')",
    ],
)
def test_passwords_are_redacted(text: str) -> None:
    clean = redact(text)
    assert "horse" not in clean
    assert HASH[7:] not in clean
    assert REDACTED in clean
    assert "ada" in clean or "bearer" in clean  # the rest of the line is kept


@pytest.mark.parametrize(
    "text",
    [
        "a bearer token is required",
        "invalid or expired access token",
        "GET /v1/stories/0b8f6c1e-4c1e-4d2a-9a57-3f1f5b1a2c3d?limit=20 HTTP/1.1",
        "amplify_stream.gateway.security: story 3-17 completed",
        '{"username": "ada", "status": "ok"}',
    ],
)
def test_ordinary_text_is_kept(text: str) -> None:
    assert redact(text) == text


def record(msg: str, *args: object, **attrs: object) -> logging.LogRecord:
    rec = logging.LogRecord("test", logging.INFO, __file__, 1, msg, args or None, None)
    for name, value in attrs.items():
        setattr(rec, name, value)
    return rec


def test_filter_rewrites_formatted_message() -> None:
    rec = record("login for %s with %s", "ada", f"Bearer {TOKEN}")
    assert RedactingFilter().filter(rec) is True  # redacts, never drops
    assert rec.getMessage() == f"login for ada with Bearer {REDACTED}"


def test_filter_leaves_clean_records_alone() -> None:
    rec = record("story %s accepted", "s1")
    RedactingFilter().filter(rec)
    assert (rec.msg, rec.args) == ("story %s accepted", ("s1",))


def test_filter_redacts_extras_and_tracebacks() -> None:
    try:
        raise ValueError(f"bad header Bearer {TOKEN}")
    except ValueError:
        exc_info = sys.exc_info()
    rec = record(
        "failed",
        first_request_line=f"GET /?access_token={TOKEN} HTTP/1.1",
        request_header={"Referer": f"http://x/?access_token={TOKEN}"},
    )
    rec.exc_info = exc_info
    rec.stack_info = f"stack with {TOKEN}"
    RedactingFilter().filter(rec)
    text = logging.Formatter().format(rec)
    assert TOKEN not in text
    # The extras too (a JSON formatter would print them).
    assert TOKEN not in rec.first_request_line
    assert TOKEN not in rec.request_header["Referer"]


def test_filter_survives_a_bad_format_string() -> None:
    rec = record("%d items, %s", "not-a-number", TOKEN)
    RedactingFilter().filter(rec)
    assert TOKEN not in rec.getMessage()


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging("debug", stream=stream)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_configure_logging_redacts_every_logger(captured: io.StringIO) -> None:
    logging.getLogger("aiohttp.access").info('"GET /v1/stream?access_token=%s HTTP/1.1"', TOKEN)
    logging.getLogger("amplify_stream.x").debug("body %s", {"password": PASSWORD})
    try:
        raise RuntimeError(f"Authorization: Bearer {TOKEN}")
    except RuntimeError:
        logging.getLogger("third.party").exception("boom")
    text = captured.getvalue()
    assert text.count(REDACTED) == 3
    assert TOKEN not in text
    assert PASSWORD not in text
    assert "DEBUG amplify_stream.x" in text  # the level was applied


def test_access_log_has_no_query_string() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("test.access")
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        request = make_mocked_request(
            "GET",
            f"/v1/stories/s1/events?access_token={TOKEN}",
            headers={"User-Agent": "curl/8", "Referer": f"http://x/?access_token={TOKEN}"},
        )
        access = PathOnlyAccessLogger(logger, "")
        assert access.enabled
        access.log(request, web.Response(status=401), 0.0123)
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue()
    assert '"GET /v1/stories/s1/events HTTP/1.1" 401' in line
    assert "curl/8" in line
    assert "access_token" not in line
    assert TOKEN not in line
