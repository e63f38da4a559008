"""Event times: RFC 3339 UTC with milliseconds, as the contract requires."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from amplify_stream.events.common import ms_since, now_rfc3339


def test_now_is_rfc3339_utc_with_milliseconds_and_agrees_with_the_clock() -> None:
    for _ in range(3):
        before = datetime.now(UTC)
        stamp = now_rfc3339()
        after = datetime.now(UTC)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp)
        at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= at <= after
        assert ms_since(stamp) < 1000
        time.sleep(0.6)  # across a second: the cached second is made anew
