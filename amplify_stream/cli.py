"""The ``amplify-stream`` command: every process of the service, and its tools.

serve               gateway and workers in one process (the embedded default)
gateway             the HTTP/WebSocket gateway alone
worker enhancer     an enhancer consumer-group member (likewise narrator, projector)
topics create       create the topics (idempotent)
fake gemini         a local Gemini-compatible server (tests, benchmarks, sandbox)
schemas             write the JSON Schemas of every event to docs/schemas/
asyncapi            write the AsyncAPI 3.0 document to docs/asyncapi.yaml
rules               write the suggestion rules to docs/rules.md
submit FILE|-       send a story to a running service and follow it (a client)
preferences         show or change your rules off, words and focus (a client)
watch               live aggregates of the outcome topic (an analytics consumer)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web

from amplify_stream.config import Settings
from amplify_stream.heap import freeze_startup_heap
from amplify_stream.logs import configure_logging


def _configure_logging(settings: Settings) -> None:
    # Redacts tokens and passwords from every line, whichever library logs it.
    configure_logging(
        settings.log_level, stream=sys.stderr, json_lines=settings.log_format == "json"
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)


def _loop_factory(settings: Settings) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when chosen and installed; None for asyncio's own."""
    if settings.event_loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            return None
        factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
        return factory
    return None


def _run(settings: Settings, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``main`` on the chosen event loop until SIGTERM or SIGINT."""
    with asyncio.Runner(loop_factory=_loop_factory(settings)) as runner:
        runner.run(_until_signalled(main))


def _serve(settings: Settings, app: web.Application) -> None:
    from amplify_stream.gateway.access_log import PathOnlyAccessLogger

    url = f"http://{settings.host}:{settings.port}/"

    async def announce(_: web.Application) -> None:
        freeze_startup_heap()
        print(f"amplify-stream is ready: open the live editor at {url}", flush=True)

    app.on_startup.append(announce)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        print=None,
        shutdown_timeout=10,
        access_log_class=PathOnlyAccessLogger,  # no query strings: they may hold tokens
        loop=factory() if (factory := _loop_factory(settings)) is not None else None,
    )


async def _until_signalled(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``main`` until SIGTERM or SIGINT, then cancel it (its cleanup runs). SIGUSR1
    logs where every task of the process waits, for an operator chasing a hang."""
    task = asyncio.create_task(main())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    loop.add_signal_handler(signal.SIGUSR1, _log_tasks)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _log_tasks() -> None:
    """Every task and the chain of awaits it is suspended in, innermost last."""
    lines: list[str] = []
    for task in asyncio.all_tasks():
        where: list[str] = []
        awaited: Any = task.get_coro()
        while awaited is not None:
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
            if frame is not None:
                code = frame.f_code
                where.append(f"{code.co_name} ({code.co_filename}:{frame.f_lineno})")
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
        lines.append(f"task {task.get_name()}: {' > '.join(where) or 'done'}")
    logging.getLogger(__name__).warning("%d tasks:\n%s", len(lines), "\n".join(sorted(lines)))


async def _run_worker(settings: Settings, role: str) -> None:
    from amplify_stream.bus import create_bus
    from amplify_stream.topics import Topics
    from consumers.probes import serving_probes
    from consumers.runtime import running

    bus = create_bus(settings)
    await bus.start()
    try:
        await bus.ensure_topics(Topics.from_settings(settings).specs())
        async with running(role, bus, settings) as worker, contextlib.AsyncExitStack() as stack:
            task = worker.task
            assert task is not None  # ``running`` returns once the worker is in its group
            if settings.metrics_port is not None:
                # Workers have no HTTP server of their own: Prometheus and the container
                # runtime's probes ask this one (consumers/probes.py).
                await stack.enter_async_context(
                    serving_probes(worker, task, host=settings.host, port=settings.metrics_port)
                )
            freeze_startup_heap()
            print(f"{role} running in group {worker.group_id}", flush=True)
            # Until SIGTERM; a worker that crashes ends the process (non-zero), so that
            # its supervisor starts a new one.
            await asyncio.shield(task)
    finally:
        await bus.close()


async def _create_topics(settings: Settings) -> None:
    from amplify_stream.bus import create_bus
    from amplify_stream.topics import Topics

    bus = create_bus(settings)
    await bus.start()
    try:
        specs = Topics.from_settings(settings).specs()
        await bus.ensure_topics(specs)
        for spec in specs:
            print(f"{spec.name}: {spec.partitions} partitions")
    finally:
        await bus.close()


def _write_schemas(out: Path, check: bool) -> int:
    from amplify_stream.events import schema_documents

    stale = []
    out.mkdir(parents=True, exist_ok=True)
    for name, schema in schema_documents().items():
        path = out / f"{name}.json"
        text = json.dumps(schema, indent=2, sort_keys=True) + "\n"
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
    if stale:
        print(f"out of date (run `amplify-stream schemas`): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="amplify-stream",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="gateway and workers in one process")
    sub.add_parser("gateway", help="the HTTP/WebSocket gateway")
    worker = sub.add_parser("worker", help="a worker process")
    # The roles of consumers/runtime.py (not imported here: parsing stays light).
    worker.add_argument("role", choices=["enhancer", "narrator", "projector", "documents"])
    topics = sub.add_parser("topics", help="topic administration")
    topics.add_argument("action", choices=["create"])
    fake = sub.add_parser("fake", help="local fakes of the internet services")
    fake.add_argument("service", choices=["gemini", "edge-tts"])
    schemas = sub.add_parser("schemas", help="write the events' JSON Schemas")
    schemas.add_argument("--out", type=Path, default=Path("docs/schemas"))
    schemas.add_argument("--check", action="store_true", help="fail when they are out of date")
    _add_client_commands(sub)
    return parser


def _add_client_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from amplify_stream.commands import preferences, submit, watch

    asyncapi = sub.add_parser("asyncapi", help="write the AsyncAPI document")
    asyncapi.add_argument("--out", type=Path, default=Path("docs/asyncapi.yaml"))
    asyncapi.add_argument("--check", action="store_true", help="fail when it is out of date")
    rules = sub.add_parser("rules", help="write the suggestion rules' catalogue")
    rules.add_argument("--out", type=Path, default=Path("docs/rules.md"))
    rules.add_argument("--check", action="store_true", help="fail when it is out of date")
    submit.add_parser(sub)
    preferences.add_parser(sub)
    watch.add_parser(sub)
    sub.add_parser(
        "lsp",
        help="a language server on stdio: live suggestions in your own editor "
        "(AMPLIFY_URL, AMPLIFY_TOKEN)",
    )


def _write_doc(path: Path, text: str, command: str, *, check: bool) -> int:
    """Write a generated document, or with ``check`` report (exit 1) when it is stale."""
    if check:
        if not path.exists() or path.read_text("utf-8") != text:
            print(f"{path} is out of date: run `amplify-stream {command}`", file=sys.stderr)
            return 1
        return 0
    path.write_text(text, "utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "schemas":
        return _write_schemas(args.out, args.check)
    if args.command == "asyncapi":
        from amplify_stream import asyncapi

        return asyncapi.write(args.out, check=args.check)
    if args.command == "rules":
        from amplify_stream.providers.local.rules import markdown

        return _write_doc(args.out, markdown(), "rules", check=args.check)
    if args.command == "submit":  # a client: no server settings needed
        from amplify_stream.commands import submit

        return submit.run(args)
    if args.command == "preferences":  # a client too
        from amplify_stream.commands import preferences

        return preferences.run(args)
    if args.command == "lsp":  # a client too; stdout is the protocol's
        from amplify_stream.lsp.server import main as lsp_main

        return lsp_main()
    settings = Settings()
    _configure_logging(settings)
    if args.command == "watch":
        from amplify_stream.commands import watch

        return watch.run(args, settings)
    if args.command == "serve":
        from amplify_stream.service import create_service

        _serve(settings, create_service(settings))
    elif args.command == "gateway":
        from amplify_stream.gateway.app import create_app

        _serve(settings, create_app(settings))
    elif args.command == "worker":
        _run(settings, lambda: _run_worker(settings, args.role))
    elif args.command == "topics":
        asyncio.run(_create_topics(settings))
    elif args.command == "fake" and args.service == "gemini":
        from amplify_stream.fakes.gemini import run_fake_gemini
        from amplify_stream.fakes.settings import FakeSettings

        asyncio.run(_until_signalled(lambda: run_fake_gemini(FakeSettings())))
    elif args.command == "fake":
        from amplify_stream.fakes.edge_tts import run_fake_edge_tts
        from amplify_stream.fakes.settings import FakeSettings

        asyncio.run(_until_signalled(lambda: run_fake_edge_tts(FakeSettings(), settings)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
