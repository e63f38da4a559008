"""``amplify-stream preferences``: the writer's own say, kept on the service (docs/protocol.md
section 6, "The writer's say"): the rules they turned off everywhere, the words they
vouch for, the focus a new document or story reads. Without options it shows them; with
options it changes them and shows the result.

A change is read, made and written back at the revision read
(``AmplifyClient.change_preferences``), so what another client changed meanwhile stays.
Exit codes: 0 shown (and saved), 2 an error (unreachable service, wrong password, an
unknown rule...).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict

from amplify_stream.client import KEEP, ClientError, PreferenceChange, Preferences
from amplify_stream.client.preferences import Keep
from amplify_stream.commands.common import add_service_arguments, client_for, parse_focus, sign_in
from amplify_stream.events import ALL_FOCUS


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    prefs = sub.add_parser(
        "preferences", help="show or change your rules off, words and focus (on the service)"
    )
    add_service_arguments(prefs)
    # Each may be given any number of times.
    for option, metavar, what in (
        ("--rule-off", "RULE", "turn RULE off everywhere (GET /v1/rules lists them)"),
        ("--rule-on", "RULE", "turn RULE back on"),
        ("--word", "WORD", "vouch for WORD as spelled (a name, a coinage)"),
        ("--remove-word", "WORD", "no longer vouch for WORD"),
    ):
        prefs.add_argument(option, action="append", default=[], metavar=metavar, help=what)
    prefs.add_argument(
        "--focus",
        action="append",
        help=f"what a new document or story reads: a comma-separated subset of "
        f"{','.join(ALL_FOCUS)}, or 'all'",
    )
    prefs.add_argument("--json", action="store_true", help="print them as one JSON object")


def run(args: argparse.Namespace, env: dict[str, str] | None = None) -> int:
    env = dict(os.environ) if env is None else env
    try:
        change = parse_change(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        prefs = asyncio.run(_preferences(args, env, change))
    except ClientError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(json.dumps(asdict(prefs), ensure_ascii=False) if args.json else render(prefs))
    return 0


def parse_change(args: argparse.Namespace) -> PreferenceChange:
    """The change the options ask for; a contradiction (a rule both off and on) is an error."""
    for add, remove, names in (
        (args.rule_off, args.rule_on, "--rule-off and --rule-on"),
        (args.word, args.remove_word, "--word and --remove-word"),
    ):
        if both := sorted(set(add) & set(remove)):
            raise ValueError(f"{names} both name {', '.join(both)}")
    focus: Sequence[str] | Keep | None = KEEP
    if args.focus:
        asked = [part.strip() for value in args.focus for part in value.split(",")]
        if "all" in asked:
            if set(asked) - {"all", ""}:
                raise ValueError("--focus all goes alone")
            focus = None
        elif not (focus := parse_focus(args.focus)):
            raise ValueError("--focus names no area")
    return PreferenceChange(
        tuple(args.rule_off), tuple(args.rule_on), tuple(args.word), tuple(args.remove_word), focus
    )


async def _preferences(
    args: argparse.Namespace, env: dict[str, str], change: PreferenceChange
) -> Preferences:
    async with client_for(args, env) as client:
        await sign_in(client, args, env)
        if change.empty:
            return await client.preferences()
        return await client.change_preferences(change)


def render(prefs: Preferences) -> str:
    focus = "all areas" if prefs.focus is None else ", ".join(prefs.focus)
    updated = f", updated {prefs.updated_at}" if prefs.updated_at else ""
    return "\n".join(
        [
            f"{'rules off':<11}{', '.join(prefs.rules_off) or 'none'}",
            f"{'words':<11}{', '.join(prefs.words) or 'none'}",
            f"{'focus':<11}{focus}",
            f"{'revision':<11}{prefs.revision}{updated}",
        ]
    )
