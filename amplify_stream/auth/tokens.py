"""Access tokens: signed JWTs that any gateway holding the key can check on its own.

HS256 with the shared ``AMPLIFY_JWT_SECRET`` for now. Key handling sits in ``SigningKeys``
so asymmetric keys (RS256/EdDSA from key files, where gateways hold only the public key)
can be added there later without touching ``issue``/``verify``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from amplify_stream.config import Settings
from amplify_stream.errors import Unauthorized

log = logging.getLogger(__name__)

REQUIRED_CLAIMS = ["sub", "name", "iat", "exp", "iss", "aud", "jti"]
# RFC 7518 section 3.2: an HS256 key MUST be at least as long as the hash output.
MIN_HS256_KEY_BYTES = 32
# Longer than any token we issue by far; refuse before doing any work.
MAX_TOKEN_CHARS = 4096


@dataclass(frozen=True, slots=True)
class Claims:
    user_id: str
    username: str
    token_id: str
    expires_at: int  # seconds since the epoch


@dataclass(frozen=True, slots=True)
class SigningKeys:
    """What signs tokens and what checks them, for exactly one algorithm."""

    algorithm: str
    signing_key: Any
    verification_key: Any

    @classmethod
    def from_settings(cls, settings: Settings) -> SigningKeys:
        if settings.jwt_secret is None:
            raise ValueError("AMPLIFY_JWT_SECRET is not set")
        secret = settings.jwt_secret.get_secret_value().encode("utf-8")
        if len(secret) < MIN_HS256_KEY_BYTES:
            raise ValueError(f"AMPLIFY_JWT_SECRET must be at least {MIN_HS256_KEY_BYTES} bytes")
        return cls(algorithm="HS256", signing_key=secret, verification_key=secret)


class TokenService:
    def __init__(
        self,
        settings: Settings,
        *,
        leeway_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = SigningKeys.from_settings(settings)
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._ttl_s = settings.access_token_ttl_s
        # Tolerates clock skew between the gateway that issued a token and the one checking it.
        self._leeway_s = leeway_s
        self._clock = clock

    def issue(self, user_id: str, username: str) -> tuple[str, int]:
        """A new access token for the user, and its lifetime in seconds."""
        now = int(self._clock())
        payload = {
            "sub": user_id,
            "name": username,
            "iat": now,
            "exp": now + self._ttl_s,
            "iss": self._issuer,
            "aud": self._audience,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(payload, self._keys.signing_key, algorithm=self._keys.algorithm)
        return token, self._ttl_s

    def verify(self, token: str) -> Claims:
        """The claims of a valid token; ``Unauthorized`` (one generic message) otherwise."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise Unauthorized("invalid or expired access token")
        try:
            payload = jwt.decode(
                token,
                self._keys.verification_key,
                # Pinned: never taken from the token's own header (no "none", no HS/RS confusion).
                algorithms=[self._keys.algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway_s,
                options={
                    "require": REQUIRED_CLAIMS,
                    "strict_aud": True,
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.PyJWTError as exc:
            # The reason only, never the token.
            log.debug("access token refused: %s", type(exc).__name__)
            raise Unauthorized("invalid or expired access token") from None
        user_id, username = payload["sub"], payload["name"]
        if not (isinstance(user_id, str) and user_id and isinstance(username, str) and username):
            raise Unauthorized("invalid or expired access token")
        return Claims(
            user_id=user_id,
            username=username,
            token_id=payload["jti"],
            expires_at=int(payload["exp"]),
        )
