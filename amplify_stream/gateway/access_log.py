"""The access log line, with the path and never the query string or the Referer.

aiohttp's format has no atom for the path alone (``%r`` is the request line with its
query), and a query may hold ``?access_token=``. The redacting log filter would catch it
too; this keeps it from being written in the first place.
"""

from __future__ import annotations

import logging

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse


class PathOnlyAccessLogger(AbstractAccessLogger):
    """``<remote> "<method> <path> HTTP/x.y" <status> <bytes> <seconds>s "<user agent>"``."""

    def log(self, request: BaseRequest | None, response: StreamResponse, time: float) -> None:
        if request is None:  # aiohttp could not parse a request at all
            self.logger.info('- "-" %d %d %.3fs', response.status, response.body_length, time)
            return
        version = request.version
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %d %d %.3fs "%s"',
            request.remote or "-",
            request.method,
            request.path,
            version.major,
            version.minor,
            response.status,
            response.body_length,
            time,
            request.headers.get("User-Agent", "-"),
        )

    @property
    def enabled(self) -> bool:
        # Skip the work when nobody would see the line.
        return self.logger.isEnabledFor(logging.INFO)
