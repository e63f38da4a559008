"""What the client commands share: which service, who is asking, and the focus areas."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from amplify_stream.client import AmplifyClient, ClientError
from amplify_stream.client.api import DEFAULT_URL
from amplify_stream.events import ALL_FOCUS


def add_service_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help=f"the service (default: AMPLIFY_URL, else {DEFAULT_URL})")
    parser.add_argument("--token", help="an access token (default: AMPLIFY_TOKEN)")
    parser.add_argument("--username", help="sign in as this user instead of --token")
    parser.add_argument(
        "--password",
        help="better from AMPLIFY_PASSWORD (or typed at the prompt): arguments show in ps",
    )


def client_for(args: argparse.Namespace, env: dict[str, str]) -> AmplifyClient:
    """The client of the service ``--url`` (or AMPLIFY_URL) names, with its token."""
    url = args.url or env.get("AMPLIFY_URL") or DEFAULT_URL
    return AmplifyClient(url, token=args.token or env.get("AMPLIFY_TOKEN"))


async def sign_in(client: AmplifyClient, args: argparse.Namespace, env: dict[str, str]) -> None:
    if args.username:
        password = args.password or env.get("AMPLIFY_PASSWORD")
        if password is None:
            if not sys.stdin.isatty():
                raise ClientError("unauthorized", "no password: set AMPLIFY_PASSWORD")
            password = await asyncio.to_thread(getpass.getpass, f"password for {args.username}: ")
        await client.login(args.username, password)
    elif not client.token:
        raise ClientError("unauthorized", "give --token (or AMPLIFY_TOKEN), or --username")


def parse_focus(values: list[str] | None, option: str = "--focus") -> list[str] | None:
    """Comma-separated focus areas, the option given any number of times (None: none)."""
    if not values:
        return None
    focus = [part.strip() for value in values for part in value.split(",") if part.strip()]
    if unknown := sorted(set(focus) - set(ALL_FOCUS)):
        choices = ", ".join(ALL_FOCUS)
        raise ValueError(f"unknown {option} {', '.join(unknown)}; choose from {choices}")
    return focus
