"""Test doubles shipped with alloy_nb: a loopback fake provider server and fixture replay.

Importable without pytest or PyYAML (notebooks use it too), and independent of
`alloy_nb.providers`: it is a second reading of the wire protocols, not a reuse of the first.
"""

from alloy_nb.testing.env import API_KEY_ENV_VARS, without_api_keys
from alloy_nb.testing.fixtures import (
    FIXTURES_DIR,
    RecordedExchange,
    iter_fixtures,
    load_fixture,
)
from alloy_nb.testing.server import FakeProviderServer, RecordedRequest
from alloy_nb.testing.wire import Entry, Replies, Reply, ToolCall, Usage, reply

__all__ = [
    "API_KEY_ENV_VARS",
    "FIXTURES_DIR",
    "Entry",
    "FakeProviderServer",
    "RecordedExchange",
    "RecordedRequest",
    "Replies",
    "Reply",
    "ToolCall",
    "Usage",
    "iter_fixtures",
    "load_fixture",
    "reply",
    "without_api_keys",
]
