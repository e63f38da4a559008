"""Keys that sign and check access tokens, for exactly one algorithm.

HS256: the shared ``AMPLIFY_JWT_SECRET``. RS256 (RSA, 2048 bits or more) and EdDSA
(Ed25519): unencrypted PEM files. The public key is derived from the private key when only
that is given; a gateway given only the public key checks tokens and issues none.
Any problem (unreadable file, wrong key type, keys that are not a pair) is a ``ValueError``
at start-up, never a surprise at the first login.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from amplify_stream.config.groups import AuthSettings
from amplify_stream.config.rules import MIN_SECRET_BYTES

MIN_RSA_BITS = 2048

_PRIVATE_TYPES: dict[str, type[Any]] = {
    "RS256": rsa.RSAPrivateKey,
    "EdDSA": ed25519.Ed25519PrivateKey,
}
_PUBLIC_TYPES: dict[str, type[Any]] = {
    "RS256": rsa.RSAPublicKey,
    "EdDSA": ed25519.Ed25519PublicKey,
}
_KEY_NAMES = {"RS256": "an RSA", "EdDSA": "an Ed25519"}


@dataclass(frozen=True, slots=True)
class SigningKeys:
    """What signs tokens and what checks them, for exactly one algorithm."""

    algorithm: str
    signing_key: Any  # None: this process checks tokens but cannot issue them
    verification_key: Any

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> SigningKeys:
        if settings.jwt_algorithm == "HS256":
            return cls._hmac(settings)
        return cls._asymmetric(settings)

    @classmethod
    def _hmac(cls, settings: AuthSettings) -> SigningKeys:
        if settings.jwt_secret is None:
            raise ValueError("AMPLIFY_JWT_SECRET is not set")
        secret = settings.jwt_secret.get_secret_value().encode("utf-8")
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"AMPLIFY_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")
        return cls(algorithm="HS256", signing_key=secret, verification_key=secret)

    @classmethod
    def _asymmetric(cls, settings: AuthSettings) -> SigningKeys:
        algorithm = settings.jwt_algorithm
        private_file, public_file = settings.jwt_private_key_file, settings.jwt_public_key_file
        if private_file is None and public_file is None:
            raise ValueError(
                f"AMPLIFY_JWT_ALGORITHM={algorithm} needs AMPLIFY_JWT_PRIVATE_KEY_FILE "
                "or AMPLIFY_JWT_PUBLIC_KEY_FILE"
            )
        private = None
        if private_file is not None:
            private = _load(private_file, private=True)
            _expect(private, _PRIVATE_TYPES[algorithm], algorithm, private_file)
        public = private.public_key() if private is not None else None
        if public_file is not None:
            loaded = _load(public_file, private=False)
            _expect(loaded, _PUBLIC_TYPES[algorithm], algorithm, public_file)
            if public is not None and _spki(public) != _spki(loaded):
                raise ValueError(f"{public_file} is not the public key of {private_file}")
            public = loaded
        if isinstance(public, rsa.RSAPublicKey) and public.key_size < MIN_RSA_BITS:
            raise ValueError(f"RSA keys must have at least {MIN_RSA_BITS} bits")
        return cls(algorithm=algorithm, signing_key=private, verification_key=public)


def _load(path: Path, *, private: bool) -> Any:
    try:
        data = path.read_bytes()
    except OSError as exc:
        # The reason (missing, permission denied), never the content.
        raise ValueError(f"cannot read the key file {path}: {exc.strerror}") from None
    try:
        if private:
            return serialization.load_pem_private_key(data, password=None)
        return serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # TypeError: an encrypted private key (no passphrase setting, by design).
        kind = "an unencrypted PEM private key" if private else "a PEM public key"
        raise ValueError(f"{path} is not {kind}") from None


def _expect(key: object, kind: type[Any], algorithm: str, path: Path) -> None:
    if not isinstance(key, kind):
        raise ValueError(f"{path} is not {_KEY_NAMES[algorithm]} key ({algorithm})")


def _spki(key: Any) -> bytes:
    data: bytes = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return data
