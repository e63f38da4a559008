"""What the editor is shown of a file's suggestions, against scripted service frames: each
diagnostic names its rule and links to its entry, and keeps the suggestion's id; the
writer's say about the document, as the service last told it, for the hover."""

from __future__ import annotations

import asyncio
from typing import Any

from amplify_stream.lsp.editor_view import rules_url, say_lines
from amplify_stream.lsp.markup import Kind
from tests.unit.test_lsp_files import URI, Service, suggestion

TEXT = "Marta poured. Martha was very angry."


def opened_with_marks(*marks: dict[str, Any]) -> Service:
    svc = Service()
    svc.files.view.rules_url = rules_url("http://svc:8080/")
    svc.files.did_open(URI, Kind.PLAIN, TEXT, 1)
    svc.opened(TEXT, 0)
    for mark in marks:
        svc.files.receive(mark)
    return svc


def mark(sid: str, quote: str, rule: str | None, **extra: Any) -> dict[str, Any]:
    start = TEXT.index(quote)
    frame = suggestion("d1", 0, start, start + len(quote), quote) | {"id": sid, **extra}
    if rule is not None:
        frame["rule"] = rule
    return frame


ANGRY = mark("s1", "very angry", "plot.intensifier", replacement="furious")
TELLING = mark("s2", "was very angry", "character.telling", focus="character")
NAME = mark("s3", "Martha", "character.lookalike_names", focus="character")
MODEL = mark("s4", "poured", "model.plot")
NO_RULE = mark("s5", "Marta poured", None, focus="setting")


async def test_a_diagnostic_names_its_rule_links_to_it_and_keeps_the_suggestion_id() -> None:
    svc = opened_with_marks(ANGRY, MODEL, NO_RULE)
    await asyncio.sleep(0)
    by_id = {d.data["id"]: d for d in svc.published[-1]}
    angry = by_id["s1"]
    assert angry.code == "plot.intensifier"
    assert angry.code_description is not None
    assert angry.code_description.href == "http://svc:8080/rules#plot.intensifier"
    assert angry.data == {"id": "s1", "rule": "plot.intensifier", "replacement": "furious"}
    # Gemini's own note has no entry to link to; a finding without a rule keeps its focus.
    assert (by_id["s4"].code, by_id["s4"].code_description) == ("model.plot", None)
    assert (by_id["s5"].code, by_id["s5"].code_description) == ("setting", None)


async def test_the_writers_say_as_the_service_told_it() -> None:
    svc = opened_with_marks()
    file = svc.files.get(URI)
    assert file is not None and say_lines(file) == []
    ignores = {
        "type": "doc.ignores",
        "doc_id": "d1",
        "version": 0,
        "dismissed": [{"id": "s1"}],
        "rules_off": ["plot.filler"],
        "words": [],
        "user": {"rules_off": [], "words": ["Mara", "Tom"]},
    }
    svc.files.receive(ignores)
    assert file.live is not None and file.live.ignores == ignores
    assert say_lines(file) == [
        "*turned off here*: plot.filler",
        "*your words*: Mara, Tom",
        "*dismissed*: 1",
    ]
    # Forgotten with a reopen, which tells them again when there are any.
    svc.files.disconnected()
    svc.files.connected()
    svc.opened(file.text, 0)
    assert file.live is not None and file.live.ignores is None and say_lines(file) == []
