"""Compatibility of the generated event schemas with the committed baseline.

The baseline is ``tests/data/schema-baseline/v<SCHEMA_VERSION>/<name>.json``: the schemas
of ``amplify_stream.events.schema_documents()`` as they were when last accepted. A change
is breaking when, at any path of any message:

- a message or a field is gone (a rename is a removal plus an addition);
- a value the baseline accepted is refused: a JSON type dropped from a union (``null``
  included), an enum/const value dropped, a constraint tightened (lengths, bounds,
  pattern), an object closed to extra properties, or a field newly required. Topics keep
  records for days and clients resume old streams: what was valid must stay valid;
- for messages the service sends (every name but ``client.*``): a field gains a JSON type
  (``int`` -> ``int | None``): readers written against the baseline meet a value they
  cannot handle.

Adding a message, or a field that is not required, is compatible. A new contract version
(``SCHEMA_VERSION`` in events/common.py, which the topics' ``.v<N>`` suffix and the socket
subprotocol follow) starts from a baseline of its own.

    python -m tests.schema_compat            # list breaking changes (exit 1 when any)
    python -m tests.schema_compat --refresh  # accept today's schemas as the baseline
    python -m tests.schema_compat --refresh --accept-breaking  # ... even when breaking
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Schema = dict[str, Any]

BASELINE_ROOT = Path(__file__).resolve().parent / "data" / "schema-baseline"
# Frames clients send: only the service reads them, so they may widen freely.
RECEIVED_PREFIX = "client."

_LOWER_BOUNDS = ("minLength", "minItems", "minProperties", "minimum", "exclusiveMinimum")
_UPPER_BOUNDS = ("maxLength", "maxItems", "maxProperties", "maximum", "exclusiveMaximum")
_EXACT = ("pattern", "format", "multipleOf")


def baseline_dir(version: str) -> Path:
    return BASELINE_ROOT / f"v{version}"


def load_baseline(version: str) -> dict[str, Schema] | None:
    """The committed baseline of ``version``; None when that version has none yet."""
    folder = baseline_dir(version)
    if not folder.is_dir():
        return None
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def write_baseline(schemas: Mapping[str, Schema], folder: Path) -> None:
    """Write ``schemas`` as the baseline in ``folder`` (formatted as docs/schemas/)."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.json"):
        if stale.stem not in schemas:
            stale.unlink()
    for name, schema in schemas.items():
        (folder / f"{name}.json").write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")


def breaking_changes(baseline: Mapping[str, Schema], current: Mapping[str, Schema]) -> list[str]:
    """Every breaking change from ``baseline`` to ``current``, as ``name: path: what``."""
    problems: list[str] = []
    for name, old in sorted(baseline.items()):
        if name not in current:
            problems.append(f"{name}: message removed")
            continue
        compare = _Compare(old, current[name], sent=not name.startswith(RECEIVED_PREFIX))
        problems += [f"{name}: {p}" for p in compare.node(old, current[name], "$")]
    return problems


# ---------------------------------------------------------------- the comparison


@dataclass(frozen=True, slots=True)
class _Branch:
    """One alternative of a schema, for one JSON type (an ``anyOf`` has several)."""

    type: str  # a JSON Schema type ("null", "integer", ...), or "any"
    schema: Schema


class _Compare:
    def __init__(self, old_root: Schema, new_root: Schema, *, sent: bool) -> None:
        self._roots = (old_root, new_root)
        self._sent = sent

    def node(self, old: Schema, new: Schema, path: str) -> list[str]:
        """What the baseline accepted at ``path`` and ``new`` refuses (and, for sent
        messages, the JSON types ``new`` adds)."""
        old_branches = list(self._branches(old, self._roots[0]))
        new_branches = list(self._branches(new, self._roots[1]))
        problems: list[str] = []
        for branch in old_branches:
            problems += self._covered(branch, new_branches, path)
        if self._sent:
            was = _types(old_branches)
            gained = {t for t in _types(new_branches) - was if not _holds_all(was, t)}
            if gained:
                problems.append(f"{path}: widened to also {', '.join(sorted(gained))}")
        return problems

    def _covered(self, old: _Branch, new: list[_Branch], path: str) -> list[str]:
        candidates = [b for b in new if _holds(b.type, old.type)]
        if not candidates:
            return [f"{path}: {old.type} no longer accepted"]
        # Enums are compared value by value: each value may land in another branch.
        values = _values(old.schema)
        if values is not None:
            lost = [v for v in values if not any(_accepts_value(b, v) for b in candidates)]
            return [f"{path}: value {json.dumps(v)} no longer accepted" for v in lost]
        attempts = [self._within(old.schema, b.schema, old.type, path) for b in candidates]
        return min(attempts, key=len)  # compatible when any alternative takes it all

    def _within(self, old: Schema, new: Schema, kind: str, path: str) -> list[str]:
        """Same JSON type: does ``new`` accept every value ``old`` does?"""
        if _values(new) is not None:
            return [f"{path}: restricted to {json.dumps(_values(new))}"]
        problems = _bounds(old, new, path)
        if kind == "array":
            problems += self.node(old.get("items", {}), new.get("items", {}), f"{path}[]")
        if kind == "object":
            problems += self._object(old, new, path)
        return problems

    def _object(self, old: Schema, new: Schema, path: str) -> list[str]:
        old_props: dict[str, Schema] = old.get("properties", {})
        new_props: dict[str, Schema] = new.get("properties", {})
        problems: list[str] = []
        added = {k: v for k, v in new_props.items() if k not in old_props}
        for name, schema in old_props.items():
            if name in new_props:
                problems += self.node(schema, new_props[name], f"{path}.{name}")
                continue
            twins = [a for a, s in added.items() if _same(schema, s)]
            hint = f" (renamed to {', '.join(twins)}?)" if twins else ""
            problems.append(f"{path}.{name}: field removed{hint}")
        for name in sorted(set(new.get("required", ())) - set(old.get("required", ()))):
            problems.append(f"{path}.{name}: now required")
        old_extra, new_extra = (
            old.get("additionalProperties", True),
            new.get("additionalProperties", True),
        )
        if new_extra is False and old_extra is not False:
            problems.append(f"{path}: no longer accepts extra properties")
        elif isinstance(new_extra, dict) and old_extra is not False:
            was = old_extra if isinstance(old_extra, dict) else {}
            problems += self.node(was, new_extra, f"{path}.*")
        return problems

    def _branches(self, schema: Schema, root: Schema, depth: int = 0) -> Iterator[_Branch]:
        """The alternatives of ``schema``, one per JSON type, with refs resolved."""
        if depth > 32:
            raise ValueError("schema nested too deep (a recursive $ref?)")
        if "$ref" in schema:
            yield from self._branches(_resolve(root, schema["$ref"]), root, depth + 1)
            return
        alternatives = schema.get("anyOf") or schema.get("oneOf")
        if alternatives:
            for alt in alternatives:
                yield from self._branches(alt, root, depth + 1)
            return
        if schema.get("allOf"):
            if len(schema["allOf"]) != 1:
                raise ValueError("allOf with several parts is not compared")
            yield from self._branches(schema["allOf"][0], root, depth + 1)
            return
        declared = schema.get("type")
        if isinstance(declared, list):
            kinds = list(declared)
        elif isinstance(declared, str):
            kinds = [declared]
        elif (values := _values(schema)) is not None:
            kinds = sorted({_type_of(v) for v in values})
        else:
            kinds = ["any"]
        for kind in kinds:
            yield _Branch(kind, _restrict(schema, kind))


def _resolve(root: Schema, ref: str) -> Schema:
    if not ref.startswith("#/"):
        raise ValueError(f"only local refs are compared: {ref}")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    resolved: Schema = node
    return resolved


def _restrict(schema: Schema, kind: str) -> Schema:
    """``schema`` for one JSON type: ``{"enum": [1, "a"]}`` -> the values of that type."""
    values = _values(schema)
    if values is None or kind == "any":
        return schema
    rest = {k: v for k, v in schema.items() if k not in ("const", "enum")}
    return rest | {"enum": [v for v in values if _type_of(v) == kind]}


def _values(schema: Schema) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    if "enum" in schema:
        return list(schema["enum"])
    return None


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _holds(new_type: str, old_type: str) -> bool:
    """A branch of ``new_type`` can hold every value of ``old_type``."""
    return new_type in (old_type, "any") or (new_type, old_type) == ("number", "integer")


def _holds_all(types: set[str], new_type: str) -> bool:
    """Some type of ``types`` already holds every value of ``new_type`` (integer in number)."""
    return any(_holds(t, new_type) for t in types)


def _accepts_value(branch: _Branch, value: Any) -> bool:
    values = _values(branch.schema)
    return values is None or value in values


def _types(branches: list[_Branch]) -> set[str]:
    return {b.type for b in branches}


def _bounds(old: Schema, new: Schema, path: str) -> list[str]:
    problems = []
    for key in _LOWER_BOUNDS:
        if key in new and (key not in old or new[key] > old[key]):
            problems.append(f"{path}: {key} tightened to {new[key]}")
    for key in _UPPER_BOUNDS:
        if key in new and (key not in old or new[key] < old[key]):
            problems.append(f"{path}: {key} tightened to {new[key]}")
    for key in _EXACT:
        if key in new and new[key] != old.get(key):
            problems.append(f"{path}: {key} changed to {new[key]!r}")
    if new.get("uniqueItems") and not old.get("uniqueItems"):
        problems.append(f"{path}: items must now be unique")
    return problems


def _same(a: Schema, b: Schema) -> bool:
    """Equal but for the annotations a rename changes (``title``)."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in ("title", "description")}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return bool(strip(a) == strip(b))


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    from amplify_stream.events import SCHEMA_VERSION, schema_documents

    parser = argparse.ArgumentParser(prog="python -m tests.schema_compat", description=__doc__)
    parser.add_argument("--refresh", action="store_true", help="write the baseline")
    parser.add_argument(
        "--accept-breaking", action="store_true", help="with --refresh: even when breaking"
    )
    args = parser.parse_args(argv)
    current = schema_documents()
    baseline = load_baseline(SCHEMA_VERSION)
    problems = [] if baseline is None else breaking_changes(baseline, current)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not args.refresh:
        if baseline is None:
            print(f"no baseline for schema version {SCHEMA_VERSION}", file=sys.stderr)
        return 1 if problems or baseline is None else 0
    if problems and not args.accept_breaking:
        print(
            "breaking changes: bump SCHEMA_VERSION (and the topics' suffix) instead, "
            "or pass --accept-breaking",
            file=sys.stderr,
        )
        return 1
    write_baseline(current, baseline_dir(SCHEMA_VERSION))
    print(f"baseline written to {baseline_dir(SCHEMA_VERSION)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
