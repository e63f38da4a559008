"""Bodies of the ``/v1/auth`` routes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from amplify_stream.auth.passwords import MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS, bcrypt_problem
from amplify_stream.events.common import ClientModel
from amplify_stream.events.text_limits import NO_NUL_PATTERN

# ASCII only: no look-alike names (a Cyrillic "a" in "admin"). Stored lowercased.
USERNAME_PATTERN = r"^[A-Za-z0-9._-]+$"


class Credentials(ClientModel):
    # Ignore extras (the contract's one exception): an OAuth2 password-flow form also
    # sends grant_type, scope, client_id.
    # hide_input_in_errors keeps the password out of str(ValidationError) (logs, tracebacks);
    # errors() still holds it unless called with include_input=False.
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    username: str = Field(min_length=3, max_length=64, pattern=USERNAME_PATTERN)
    # SecretStr: never shown by repr() or in logs; read it with get_secret_value().
    # The schema states what JSON Schema can: at most 72 characters is looser than
    # bcrypt's 72 bytes for any character beyond ASCII.
    password: SecretStr = Field(
        description=(
            f"At least {MIN_PASSWORD_CHARS} characters, at most {MAX_PASSWORD_BYTES} bytes "
            "in UTF-8 (bcrypt's limit), no NUL."
        ),
        json_schema_extra={
            "minLength": MIN_PASSWORD_CHARS,
            "maxLength": MAX_PASSWORD_BYTES,
            "pattern": NO_NUL_PATTERN,
        },
    )

    @field_validator("password")
    @classmethod
    def _password_rules(cls, value: SecretStr) -> SecretStr:
        password = value.get_secret_value()
        if len(password) < MIN_PASSWORD_CHARS:
            raise ValueError(f"password must be at least {MIN_PASSWORD_CHARS} characters")
        problem = bcrypt_problem(password)
        if problem is not None:
            raise ValueError(problem)
        return value


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class UserOut(BaseModel):
    # from_attributes: UserOut.model_validate(user_record) works.
    model_config = ConfigDict(from_attributes=True)

    id: str
    username: str
