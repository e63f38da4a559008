"""Stories POSTed at a steady rate through a fault, for several accounts in turn (the
gateway admits one submission of an account at a time), every answer kept; and the check
each such test makes of them: accepted (202) or refused with a retryable 503."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from tests.faults.scenario import Scenario


def short_story(i: int) -> str:
    return (
        f"Night {i + 1}. Mara walked into the old lighthouse at dusk. The door was opened "
        'by the wind. "Stay close," Tom whispered nervously.'
    )


@dataclass
class Answer:
    sent_at: float
    status: int | None
    body: Any
    error: str | None = None


class Submissions:
    """A POST every ``every_s`` until ``stopping`` is set, account ``i % len(tokens)``
    each; one held longer than ``timeout_s`` is neither accepted nor refused (its
    ``error`` says so). ``request_prefix`` makes the request ids the test's own."""

    def __init__(
        self,
        scenario: Scenario,
        tokens: list[str],
        *,
        every_s: float,
        timeout_s: float,
        request_prefix: str,
    ) -> None:
        self.scenario = scenario
        self.tokens = tokens
        self.every_s = every_s
        self.timeout_s = timeout_s
        self.request_prefix = request_prefix
        self.answers: list[Answer] = []

    def accepted(self) -> list[str]:
        return [a.body["story_id"] for a in self.answers if a.status == 202]

    async def run(self, stopping: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as group:
            i = 0
            while not stopping.is_set():
                group.create_task(self._submit(i))
                i += 1
                await asyncio.sleep(self.every_s)

    async def _submit(self, i: int) -> None:
        session, base = self.scenario.session, self.scenario.gateway.base
        token = self.tokens[i % len(self.tokens)]
        sent = time.monotonic()
        try:
            async with (
                asyncio.timeout(self.timeout_s),
                session.post(
                    f"{base}/v1/stories",
                    json={"text": short_story(i), "request_id": f"{self.request_prefix}{i}"},
                    headers={"Authorization": f"Bearer {token}"},
                ) as res,
            ):
                body = await res.json(content_type=None)
                self.answers.append(Answer(sent, res.status, body))
        except Exception as exc:
            self.answers.append(Answer(sent, None, None, repr(exc)))


def check_answers(scenario: Scenario, answers: list[Answer]) -> None:
    """Every POST was accepted (202) or refused with a retryable 503."""
    for a in answers:
        if a.status == 202:
            continue
        if a.status == 503:
            error = (a.body or {}).get("error", {})
            if error.get("code") != "unavailable" or error.get("retryable") is not True:
                scenario.fail(f"503 without code unavailable, retryable true: {a.body}")
        else:
            scenario.fail(f"answer {a.status} {a.error or a.body}")
