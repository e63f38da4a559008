"""The async Python client of the service (docs/protocol.md): ``AmplifyClient`` (``api``),
story streams that resume by themselves (``stream``, ``feed``), the writer's preferences
(``preferences``), ``ClientError``."""

from amplify_stream.client.api import AmplifyClient
from amplify_stream.client.errors import ClientError
from amplify_stream.client.feed import StoryFeed
from amplify_stream.client.preferences import KEEP, PreferenceChange, Preferences
from amplify_stream.client.stream import StoryStream

__all__ = [
    "KEEP",
    "AmplifyClient",
    "ClientError",
    "PreferenceChange",
    "Preferences",
    "StoryFeed",
    "StoryStream",
]
