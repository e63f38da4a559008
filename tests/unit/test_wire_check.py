"""The table checker of the wire-name tests (tests/wire_check.py) catches what it must."""

from __future__ import annotations

from typing import Any

import pytest

from tests.wire_check import Spec, problems_of

TOKEN = {"access_token": "string", "token_type": "'bearer'", "expires_in": "integer"}


def test_a_matching_value_passes() -> None:
    grant = {"access_token": "t", "token_type": "bearer", "expires_in": 3600, "extra": 1}
    assert problems_of(grant, TOKEN, "token") == []


def test_a_renamed_field_is_missing() -> None:
    grant = {"access_token": "t", "token_type": "bearer", "expires": 3600}
    assert problems_of(grant, TOKEN, "token") == [
        "token: no 'expires_in' (has ['access_token', 'expires', 'token_type'])"
    ]


@pytest.mark.parametrize(
    ("value", "spec", "ok"),
    [
        ("2026-01-02T03:04:05.678Z", "timestamp", True),
        ("2026-01-02T03:04:05Z", "timestamp", False),  # no milliseconds
        ("2026-01-02T03:04:05.678+00:00", "timestamp", False),  # not Z
        (3, "number", True),
        (3.5, "integer", False),
        (True, "integer", False),
        (None, "integer|null", True),
        ("queued", "'queued'", True),
        ("running", "'queued'", False),
        ("aGk=", "base64", True),
        ("not base64!", "base64", False),
        ({"a": 1, "b": 2.5}, {"*": "number"}, True),
        ({"a": "x"}, {"*": "number"}, False),
        ([{"id": "1"}, {"id": 2}], [{"id": "string"}], False),
    ],
)
def test_types(value: Any, spec: Spec, ok: bool) -> None:
    assert (problems_of(value, spec, "v") == []) is ok


def test_optional_fields_are_typed_when_present() -> None:
    spec = {"request_id?": "string"}
    assert problems_of({}, spec, "e") == []
    assert problems_of({"request_id": None}, spec, "e") == []
    assert problems_of({"request_id": 7}, spec, "e") == ["e.request_id: 7 is not string"]


def test_an_unknown_type_name_is_a_mistake_in_the_table() -> None:
    with pytest.raises(ValueError, match="unknown type"):
        problems_of("x", "text", "v")
