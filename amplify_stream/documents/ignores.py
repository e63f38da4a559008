"""What a writer has said about a document's suggestions (docs/protocol.md section 6,
"The writer's say"): the findings they dismissed, the rules they turned off and the words
they vouched for, in this document and (as the document last heard them) everywhere.

Pure: the owner folds the commands that change it and asks ``hides`` of each finding
before it goes live, so a dismissed finding never comes back, whatever pass finds it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from amplify_stream.events import Focus
from amplify_stream.events.documents import (
    DismissedFinding,
    DocumentIgnoresRecord,
    UserIgnores,
    UserPreferences,
)
from amplify_stream.text.sentences import sentence_spans

# Per document; the user's own are bounded where they are set (``PUT /v1/me/preferences``).
MAX_DISMISSED = 500
MAX_DOC_WORDS = 200
MAX_DOC_RULES_OFF = 50

_WORD = re.compile(r"\w[\w'’-]*")  # noqa: RUF001 - with the curly apostrophe, as typed
_QUOTED = re.compile(r"['‘\"“]([^'’\"”]{1,64})['’\"”]")  # noqa: RUF001 - quotes as written


class TooMany(ValueError):
    """A limit of the writer's say passed: nothing changed."""


def finding_key(rule: str | None, focus: Focus, message: str, quote: str, sentence: str) -> str:
    """What makes a finding "the same one" for a dismissal: its rule (its focus and message
    where it has none), its words, and the sentence they sit in, spaces collapsed. Not its
    place (an edit elsewhere moves it) nor its id (a pass finds it again under another),
    nor a model's message (it changes from pass to pass); the same words in another
    sentence, or the sentence rewritten, are a new question for the writer. LTeX hides
    false positives by rule and sentence for the same reasons."""
    what = rule if rule is not None else f"{focus}\x1f{message}"
    said = "\x1f".join((what, " ".join(quote.split()), " ".join(sentence.split())))
    return hashlib.blake2b(said.encode(), digest_size=10).hexdigest()


def sentence_around(text: str, start: int, end: int) -> str:
    """The sentence (or sentences) of ``text`` that hold code points ``[start, end)``,
    read within the lines the span touches: the same answer from the whole document and
    from the lines a pass read, so the two sides of a dismissal agree."""
    first = text.rfind("\n", 0, start) + 1
    last = text.find("\n", max(end, start))
    region = text[first : len(text) if last < 0 else last]
    at, to = start - first, end - first
    spans = sentence_spans(region, wrapped=True) or [(0, len(region))]
    begin = max((a for a, _ in spans if a <= at), default=0)
    finish = min((b for _, b in spans if b >= to), default=len(region))
    return region[begin:finish]


def about(words: Iterable[str], quote: str, message: str) -> bool:
    """Whether a finding is about one of ``words``: a whole word of its quote, or a word
    its message quotes (the other name of a look-alike pair). Case matters."""
    wanted = set(words)
    if not wanted:
        return False
    said = set(_WORD.findall(quote)) | set(_QUOTED.findall(message))
    said |= {w[:-2] for w in said if w.endswith(("'s", "’s"))}  # noqa: RUF001 - possessives
    if said & wanted:
        return True
    # A vouched name of several words ("Van Helsing"): as a whole in the quote.
    return any(" " in w and re.search(rf"(?<!\w){re.escape(w)}(?!\w)", quote) for w in wanted)


@dataclass
class Ignores:
    dismissed: dict[str, DismissedFinding] = field(default_factory=dict)  # by finding key
    rules_off: set[str] = field(default_factory=set)
    words: set[str] = field(default_factory=set)
    user: UserPreferences = field(default_factory=UserPreferences)

    def __bool__(self) -> bool:
        return bool(
            self.dismissed or self.rules_off or self.words or self.user.rules_off or self.user.words
        )

    def hides(
        self,
        rule: str | None,
        focus: Focus,
        message: str,
        quote: str,
        sentence: Callable[[], str],
    ) -> bool:
        """Whether the writer said no to this finding (``sentence`` is asked only when a
        dismissal could match)."""
        if not self:
            return False
        if rule is not None and (rule in self.rules_off or rule in self.user.rules_off):
            return True
        if about(self.words, quote, message) or about(self.user.words, quote, message):
            return True
        return bool(self.dismissed) and (
            finding_key(rule, focus, message, quote, sentence()) in self.dismissed
        )

    # ------------------------------------------------------------ changes

    def dismiss(self, key: str, finding: DismissedFinding) -> None:
        if key not in self.dismissed and len(self.dismissed) >= MAX_DISMISSED:
            raise TooMany(
                f"this document has {MAX_DISMISSED} dismissed findings, the limit; undo some first"
            )
        self.dismissed[key] = finding

    def undismiss(self, suggestion_id: str) -> DismissedFinding | None:
        key = next((k for k, f in self.dismissed.items() if f.id == suggestion_id), None)
        return None if key is None else self.dismissed.pop(key)

    def turn_off(self, rule: str) -> None:
        _add(self.rules_off, rule, MAX_DOC_RULES_OFF, "rules turned off")

    def vouch(self, word: str) -> None:
        _add(self.words, word, MAX_DOC_WORDS, "words")

    def hear(self, preferences: UserPreferences) -> tuple[bool, bool] | None:
        """The user's preferences, when newer than the ones held: None when not, else
        (whether something was added, whether something was taken away)."""
        if preferences.revision <= self.user.revision:
            return None
        before = self.user
        self.user = preferences
        added = bool(
            set(preferences.rules_off) - set(before.rules_off)
            or set(preferences.words) - set(before.words)
        )
        removed = bool(
            set(before.rules_off) - set(preferences.rules_off)
            or set(before.words) - set(preferences.words)
        )
        return added, removed

    # ------------------------------------------------------------ records

    def record(self) -> DocumentIgnoresRecord | None:
        # Kept while the user's revision is known, even with nothing to ignore: a new
        # owner must not take an older revision for news.
        if not self and self.user.revision == 0:
            return None
        return DocumentIgnoresRecord(
            dismissed=dict(self.dismissed),
            rules_off=sorted(self.rules_off),
            words=sorted(self.words),
            user=self.user,
        )

    @classmethod
    def from_record(cls, record: DocumentIgnoresRecord | None) -> Ignores:
        if record is None:
            return cls()
        return cls(dict(record.dismissed), set(record.rules_off), set(record.words), record.user)

    def user_ignores(self) -> UserIgnores:
        return UserIgnores(rules_off=list(self.user.rules_off), words=list(self.user.words))


def _add(into: set[str], value: str, limit: int, what: str) -> None:
    if value not in into and len(into) >= limit:
        raise TooMany(f"this document has {limit} {what}, the limit; undo some first")
    into.add(value)
