"""The SSE parser: WHATWG framing with chunks split at every possible byte boundary."""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alloy_nb.providers._sse import SSEDecoder, SSEEvent


def parse(*chunks: bytes, close: bool = True) -> list[SSEEvent]:
    d = SSEDecoder()
    out: list[SSEEvent] = []
    for c in chunks:
        out += d.feed(c)
    if close:
        out += d.close()
    return out


def pairs(events: list[SSEEvent]) -> list[tuple[str, str]]:
    return [(e.event, e.data) for e in events]


def test_one_event_with_name_data_and_id() -> None:
    [ev] = parse(b'event: message_start\nid: 7\ndata: {"a": 1}\n\n')
    assert ev == SSEEvent("message_start", '{"a": 1}', "7")


def test_partial_event_waits_for_the_blank_line() -> None:
    d = SSEDecoder()
    assert d.feed(b"event: ping\ndata: {}") == []
    assert d.feed(b"\n") == []
    assert pairs(d.feed(b"\n")) == [("ping", "{}")]


def test_two_events_in_one_chunk_keep_their_order() -> None:
    evs = parse(b"data: 1\n\ndata: 2\n\n")
    assert pairs(evs) == [("message", "1"), ("message", "2")]


def test_data_only_event_is_a_message_and_done_is_plain_data() -> None:
    assert pairs(parse(b"data: [DONE]\n\n")) == [("message", "[DONE]")]
    assert parse(b"") == []


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending(eol: bytes) -> None:
    body = eol.join([b"event: a", b"data: x", b"data: y", b"", b"data: z", b"", b""])
    assert pairs(parse(body)) == [("a", "x\ny"), ("message", "z")]


def test_mixed_line_endings() -> None:
    assert pairs(parse(b"data: a\r\ndata: b\rdata: c\n\r\n")) == [("message", "a\nb\nc")]


def test_crlf_split_between_cr_and_lf_is_one_line_ending() -> None:
    # If the \n after a chunk-final \r counted as a second line end, "a" would be dispatched
    # early and "b" would become a separate event.
    assert pairs(parse(b"data: a\r", b"\ndata: b\r\n\r\n")) == [("message", "a\nb")]
    assert pairs(parse(b"data: a\r\n\r", b"\ndata: b\r\n\r\n")) == [
        ("message", "a"),
        ("message", "b"),
    ]
    assert pairs(parse(b"data: a\r", b"\n", b"\r", b"\n")) == [("message", "a")]


def test_comments_and_unknown_fields_are_ignored() -> None:
    body = b": OPENROUTER PROCESSING\n\nfoo: bar\ndata: 1\n: mid\n\n"
    assert pairs(parse(body)) == [("message", "1")]


def test_space_after_colon_is_optional_and_only_one_is_stripped() -> None:
    assert [e.data for e in parse(b"data:{}\n\ndata:  two\n\n")] == ["{}", " two"]


def test_field_without_colon_and_empty_data_lines() -> None:
    assert [e.data for e in parse(b"data\n\n")] == [""]
    assert [e.data for e in parse(b"data:\ndata:\n\n")] == ["\n"]


def test_event_without_data_is_not_dispatched_and_resets_the_type() -> None:
    assert pairs(parse(b"event: a\n\ndata: 1\n\n")) == [("message", "1")]


def test_retry_field_sets_the_delay_only_when_numeric() -> None:
    d = SSEDecoder()
    d.feed(b"retry: 1500\n\n")
    assert d.retry == 1500
    d.feed(b"retry: soon\n\nretry: 1.5\n\n")
    assert d.retry == 1500


def test_id_persists_and_nul_ids_are_ignored() -> None:
    evs = parse(b"id: 1\ndata: a\n\ndata: b\n\nid: x\x00y\ndata: c\n\n")
    assert [e.id for e in evs] == ["1", "1", "1"]


def test_leading_bom_is_dropped_even_when_split() -> None:
    bom = "\ufeff".encode()
    assert pairs(parse(bom + b"data: 1\n\n")) == [("message", "1")]
    assert pairs(parse(bom[:1], bom[1:2], bom[2:] + b"data: 1\n\n")) == [("message", "1")]


def test_bom_later_in_the_stream_is_data() -> None:
    evs = parse(b"data: 1\n\ndata: \xef\xbb\xbf2\n\n")
    assert [e.data for e in evs] == ["1", "\ufeff2"]


def test_multibyte_utf8_split_inside_a_character() -> None:
    body = "data: héllo 😊 €\n\n".encode()
    for i in range(1, len(body)):
        assert [e.data for e in parse(body[:i], body[i:])] == ["héllo 😊 €"], i


def test_unicode_line_separators_inside_json_are_not_line_endings() -> None:
    body = 'data: {"t": "a\u2028b\u0085c\x0cd"}\n\n'.encode()
    assert [e.data for e in parse(body)] == ['{"t": "a\u2028b\u0085c\x0cd"}']


def test_close_dispatches_a_terminated_event_without_blank_line() -> None:
    assert [e.data for e in parse(b"data: 1\n\ndata: 2\n")] == ["1", "2"]
    assert [e.data for e in parse(b"data: 1\r")] == ["1"]


def test_close_drops_an_unterminated_line() -> None:
    assert [e.data for e in parse(b'data: 1\n\ndata: {"cut')] == ["1"]
    assert [e.data for e in parse(b"data: 1\ndata: 2")] == ["1"]


def test_trailing_spaces_after_json_are_kept_for_the_json_parser() -> None:
    assert [e.data for e in parse(b'data: {"a":1}      \n\n')] == ['{"a":1}      ']


_STREAM = (
    "\ufeffevent: message_start\r\n"
    'data: {"type":"message_start","text":"héllo 😊"}\r\n'
    "\r\n"
    ": keep-alive comment\r"
    "\r"
    "id: 42\n"
    "retry: 3000\n"
    "data: line one\n"
    "data:line two €\n"
    "\n"
    "event: content_block_delta\r\n"
    'data: {"delta":"ü"}   \r\n'
    "\r\n"
    "data: [DONE]\n"
    "\n"
).encode()


def _expected() -> list[SSEEvent]:
    return [
        SSEEvent("message_start", '{"type":"message_start","text":"héllo 😊"}', ""),
        SSEEvent("message", "line one\nline two €", "42"),
        SSEEvent("content_block_delta", '{"delta":"ü"}   ', "42"),
        SSEEvent("message", "[DONE]", "42"),
    ]


def test_split_at_every_byte_boundary() -> None:
    for i in range(len(_STREAM) + 1):
        assert parse(_STREAM[:i], _STREAM[i:]) == _expected(), i


def test_byte_by_byte() -> None:
    d = SSEDecoder()
    out: list[SSEEvent] = []
    for b in _STREAM:
        out += d.feed(bytes([b]))
    assert out + d.close() == _expected()
    assert d.retry == 3000


def test_random_chunkings() -> None:
    rng = random.Random(1234)
    for _ in range(300):
        cuts = sorted(rng.sample(range(1, len(_STREAM)), rng.randint(1, 12)))
        chunks = [_STREAM[a:b] for a, b in zip([0, *cuts], [*cuts, len(_STREAM)], strict=True)]
        assert parse(*chunks) == _expected()


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert [e.data for e in parse(b"data: a\xffb\n\n")] == ["a\ufffdb"]


def test_a_huge_line_in_tiny_chunks_stays_linear() -> None:
    # A Responses `response.completed` event can carry the whole reply on one data line.
    big = b"data: " + b"x" * 400_000 + b"\n\n"
    d = SSEDecoder()
    t0 = time.perf_counter()
    out: list[SSEEvent] = []
    for i in range(0, len(big), 16):
        out += d.feed(big[i : i + 16])
    assert [len(e.data) for e in out] == [400_000]
    assert time.perf_counter() - t0 < 2  # quadratic re-scanning would take far longer


def _reference(stream: str) -> list[tuple[str, str]]:
    """A one-shot reading of the WHATWG rules over the whole text (regex line split)."""
    import re

    lines = re.split(r"\r\n|\r|\n", stream)
    lines.pop()  # an unterminated last line is dropped
    out: list[tuple[str, str]] = []
    data: list[str] = []
    event = ""
    for line in [*lines, ""]:
        if not line:
            if data:
                out.append((event or "message", "\n".join(data)))
            data, event = [], ""
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value[:1] == " " else value
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
    return out


_LINES = st.lists(
    st.tuples(
        st.sampled_from(["data: ", "data:", "event: ", ": ", ""]),
        st.text(alphabet="ab\u2028é ", max_size=6),
        st.sampled_from(["\n", "\r", "\r\n", "\n\n", "\r\n\r\n", "\r\r"]),
    ),
    max_size=12,
)


@given(_LINES, st.lists(st.integers(min_value=0, max_value=200), max_size=8))
@settings(max_examples=300, deadline=None)
def test_any_line_endings_in_any_chunking_match_the_one_shot_reading(
    lines: list[tuple[str, str, str]], cuts: list[int]
) -> None:
    text = "".join(f"{a}{b}{c}" for a, b, c in lines)
    raw = text.encode()
    points = sorted({min(c, len(raw)) for c in cuts})
    chunks = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
    assert pairs(parse(*chunks)) == _reference(text)
