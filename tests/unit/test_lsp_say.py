"""The writer's say in the language server against scripted service frames: the code
actions offered for what the cursor touches, the commands' frames and their answers (a
refusal is the command's, never read as the file's)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from lsprotocol import types

from amplify_stream.lsp.say import DISMISS_COMMAND, WORD_COMMAND, Say, SayError, say_actions
from tests.unit.test_lsp_editor_view import ANGRY, NAME, TELLING, TEXT, opened_with_marks
from tests.unit.test_lsp_files import URI


def at(quote: str, offset: int = 0) -> types.Range:
    p = types.Position(line=0, character=TEXT.index(quote) + offset)
    return types.Range(start=p, end=p)


def titles(actions: list[types.CodeAction]) -> list[str]:
    return [a.title for a in actions]


async def test_the_actions_for_one_suggestion_and_for_two_under_the_cursor() -> None:
    svc = opened_with_marks(ANGRY, TELLING, NAME)
    file = svc.files.get(URI)
    assert file is not None
    view = svc.files.view
    # On "was": only the telling suggestion, whose quote is not one word.
    assert titles(say_actions(file, at("was"), view)) == [
        "Dismiss this suggestion",
        "Turn off character.telling in this document",
        "Turn off character.telling everywhere",
    ]
    # On "very": both; each dismissal says which, each rule is offered.
    both = say_actions(file, at("very"), view)
    assert titles(both) == [
        'Dismiss this suggestion ("was very angry")',
        "Turn off character.telling in this document",
        "Turn off character.telling everywhere",
        'Dismiss this suggestion ("very angry")',
        "Turn off plot.intensifier in this document",
        "Turn off plot.intensifier everywhere",
    ]
    off = both[5]
    assert off.kind == types.CodeActionKind.QuickFix and off.diagnostics
    assert off.diagnostics[0].data["id"] == "s1"
    assert off.command is not None and off.command.command == DISMISS_COMMAND
    assert off.command.arguments == [
        {"uri": URI, "id": "s1", "rule": "plot.intensifier", "scope": "everywhere"}
    ]
    # A name: vouched for everywhere.
    name = say_actions(file, at("Martha", 2), view)
    assert titles(name)[-1] == "Add 'Martha' to my words"
    assert name[-1].command is not None and name[-1].command.command == WORD_COMMAND
    assert name[-1].command.arguments == [{"uri": URI, "word": "Martha", "scope": "everywhere"}]
    # Nothing where no suggestion is.
    assert say_actions(file, at("poured"), view) == []


async def test_commands_send_the_frames_and_answer_with_the_ignores() -> None:
    svc = opened_with_marks(ANGRY, NAME)
    file = svc.files.get(URI)
    assert file is not None
    say = Say(svc.files.get, svc.send)

    async def answered(call: Any, answer: dict[str, Any]) -> Any:
        task = asyncio.create_task(call)
        await asyncio.sleep(0)
        frame = svc.sent[-1]
        assert say.answer(answer | {"request_id": frame["request_id"], "doc_id": "d1"}) is (
            answer["type"] == "error"
        )
        return frame, task

    ignores = {"type": "doc.ignores", "version": 0, "dismissed": [], "rules_off": []}
    frame, task = await answered(say.dismiss({"uri": URI, "id": "s1"}), ignores)
    assert frame == {
        "type": "doc.dismiss",
        "scope": "suggestion",
        "id": "s1",
        "doc_id": "d1",
        "request_id": frame["request_id"],
    }
    assert (await task)["type"] == "doc.ignores"
    # Not removed here: the service's doc.retracted does that.
    assert "s1" in (file.live.marks if file.live else {})

    args = {"uri": URI, "id": "s1", "rule": "plot.intensifier", "scope": "document"}
    frame, task = await answered(say.dismiss(args), ignores)
    assert (frame["rule"], frame["scope"]) == ("plot.intensifier", "document")
    assert "id" not in frame  # the rule by name: its suggestion may have gone meanwhile
    await task

    word = {"uri": URI, "word": "Martha", "scope": "everywhere"}
    refusal = {"type": "error", "code": "invalid_message", "message": "too many words"}
    frame, task = await answered(say.add_word(word), refusal)
    assert (frame["type"], frame["word"], frame["scope"]) == ("doc.word", "Martha", "everywhere")
    with pytest.raises(SayError, match="too many words"):
        await task


async def test_a_refused_dismissal_is_not_the_files_and_a_gone_suggestion_is_not_sent() -> None:
    svc = opened_with_marks(ANGRY)
    say = Say(svc.files.get, svc.send)
    task = asyncio.create_task(say.dismiss({"uri": URI, "id": "s1"}))
    await asyncio.sleep(0)
    request_id = svc.sent[-1]["request_id"]
    opens = len([f for f in svc.sent if f["type"] == "doc.open"])
    refusal = {"type": "error", "code": "not_found", "doc_id": "d1", "request_id": request_id}
    # The server's routing: the say first, the files only with what it leaves.
    if not say.answer(refusal | {"message": "not live"}):
        svc.files.receive(refusal)
    with pytest.raises(SayError, match="not_found"):
        await task
    # A not_found of an edit would have made a new document; this one is the command's.
    assert len([f for f in svc.sent if f["type"] == "doc.open"]) == opens

    sent = len(svc.sent)
    with pytest.raises(SayError, match="no longer there"):
        await say.dismiss({"uri": URI, "id": "gone"})
    with pytest.raises(SayError, match="needs 'uri'"):
        await say.dismiss({"id": "s1"})
    assert len(svc.sent) == sent

    task = asyncio.create_task(say.dismiss({"uri": URI, "id": "s1"}))
    await asyncio.sleep(0)
    say.lost()
    with pytest.raises(SayError, match="dropped"):
        await task
