"""Test doubles shipped with alloy_nb: a loopback fake provider server and fixture replay.

Importable without pytest or PyYAML (notebooks use it too), and independent of
`alloy_nb.providers`: it is a second reading of the wire protocols, not a reuse of the first.
The reference's ``Alloy.Testing`` helpers (``run_with_responses`` and friends, in
``helpers.py``) are the exception: they drive the real loop with the Scripted provider.
"""

from alloy_nb.testing.env import API_KEY_ENV_VARS, without_api_keys
from alloy_nb.testing.fixtures import (
    FIXTURES_DIR,
    RecordedExchange,
    iter_fixtures,
    load_fixture,
)
from alloy_nb.testing.helpers import (
    assert_tool_called,
    error_response,
    last_text,
    refute_tool_called,
    run_with_responses,
    text_response,
    tool_calls,
    tool_response,
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
    "assert_tool_called",
    "error_response",
    "iter_fixtures",
    "last_text",
    "load_fixture",
    "refute_tool_called",
    "reply",
    "run_with_responses",
    "text_response",
    "tool_calls",
    "tool_response",
    "without_api_keys",
]
