"""Check wire JSON against field tables written by hand from docs/protocol.md.

A table maps a field name to what its value must be; a name ending in ``?`` is optional
(absent or null; typed when it has a value). What a value must be:

- a string of ``|``-separated alternatives: ``string``, ``integer``, ``number``,
  ``boolean``, ``null``, ``object``, ``array``, ``any``, ``timestamp`` (RFC 3339 UTC with
  milliseconds), ``base64``, or a literal in single quotes (``'queued'``);
- a dict: a nested object with its own table (the key ``*`` types every value of a map);
- a one-element list: an array whose items are all that.

Types are JSON's, as any client sees them: ``integer`` refuses 1.5 and ``true``, ``number``
takes 3 and 3.5.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

RFC3339_MS_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

Spec = str | Mapping[str, Any] | list[Any]


def problems_of(value: Any, spec: Spec, where: str) -> list[str]:
    """Every way ``value`` breaks ``spec``; ``where`` names it in the messages."""
    if isinstance(spec, Mapping):
        if not isinstance(value, dict):
            return [f"{where}: {_show(value)} is not an object"]
        return _fields(value, spec, where)
    if isinstance(spec, list):
        if not isinstance(value, list):
            return [f"{where}: {_show(value)} is not an array"]
        return [
            p for i, item in enumerate(value) for p in problems_of(item, spec[0], f"{where}[{i}]")
        ]
    if any(_is(value, alternative) for alternative in spec.split("|")):
        return []
    return [f"{where}: {_show(value)} is not {spec}"]


def _fields(value: dict[str, Any], spec: Mapping[str, Any], where: str) -> list[str]:
    problems: list[str] = []
    for key, wanted in spec.items():
        if key == "*":
            for name, item in value.items():
                problems += problems_of(item, wanted, f"{where}.{name}")
            continue
        name, optional = key.removesuffix("?"), key.endswith("?")
        if name not in value or (optional and value[name] is None):
            if not optional:
                problems.append(f"{where}: no {name!r} (has {sorted(value)})")
            continue
        problems += problems_of(value[name], wanted, f"{where}.{name}")
    return problems


def _is(value: Any, kind: str) -> bool:
    if kind.startswith("'"):
        return bool(value == kind.strip("'"))
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "timestamp":
        return isinstance(value, str) and RFC3339_MS_UTC.match(value) is not None
    if kind == "base64":
        return isinstance(value, str) and _decodes(value)
    simple: dict[str, Any] = {
        "string": str,
        "boolean": bool,
        "null": type(None),
        "object": dict,
        "array": list,
        "any": object,
    }
    if kind not in simple:
        raise ValueError(f"unknown type in a wire table: {kind!r}")
    return isinstance(value, simple[kind])


def _decodes(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
