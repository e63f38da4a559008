"""Access tokens: signed JWTs that any gateway holding the key can check on its own.

One algorithm per deployment (``AMPLIFY_JWT_ALGORITHM``): HS256 with the shared secret, or
RS256/EdDSA with key files (``signing.py``). ``verify`` accepts that algorithm only, so a
token cannot pick its own (``alg: none``, or HS256 "signed" with the RSA public key).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import jwt

from amplify_stream.auth.signing import SigningKeys
from amplify_stream.config.groups import AuthSettings
from amplify_stream.errors import NotReady, Unauthorized

log = logging.getLogger(__name__)

__all__ = ["Claims", "SigningKeys", "TokenService"]

REQUIRED_CLAIMS = ["sub", "name", "iat", "exp", "iss", "aud", "jti"]
# Longer than any token we issue by far; refuse before doing any work.
MAX_TOKEN_CHARS = 4096


@dataclass(frozen=True, slots=True)
class Claims:
    user_id: str
    username: str
    token_id: str
    expires_at: int  # seconds since the epoch


class TokenService:
    def __init__(
        self,
        settings: AuthSettings,
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
        if self._keys.signing_key is None:
            raise NotReady("this gateway checks tokens but does not issue them")
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
