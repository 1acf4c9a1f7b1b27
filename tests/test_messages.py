"""Messages and content blocks (conformance I129–I134) and history repair."""

from __future__ import annotations

from alloy_nb.messages import (
    INTERRUPTED_RESULT,
    ImageBlock,
    Message,
    RawBlock,
    ServerToolUseBlock,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    assistant,
    repair_history,
    tool_results,
    user,
)


def test_i129_user_and_assistant() -> None:
    u, a = user("hi"), assistant("hello")
    assert (u.role, u.text, a.role, a.text) == ("user", "hi", "assistant", "hello")
    assert u.content == [TextBlock(text="hi")]
    assert user("").content == []


def test_i130_media_blocks() -> None:
    img = ImageBlock(mime_type="image/png", data="aGk=")
    assert (img.type, img.mime_type, img.data) == ("image", "image/png", "aGk=")
    doc = Message.model_validate({"role": "user", "content": [
        {"type": "document", "mime_type": "application/pdf", "uri": "file://x.pdf"}]})
    [block] = doc.content
    assert isinstance(block, RawBlock) and block.uri == "file://x.pdf"  # type: ignore[attr-defined]
    assert doc.model_dump()["content"][0]["mime_type"] == "application/pdf"


def test_i131_mixed_user_content() -> None:
    m = user([TextBlock(text="look"), ImageBlock(mime_type="image/png", data="x")])
    assert m.text == "look" and len(m.content) == 2


def test_i132_tool_calls() -> None:
    use = ToolUseBlock(id="1", name="echo", input={})
    server = ServerToolUseBlock(id="2", name="code_execution", input={})
    m = assistant([TextBlock(text="x"), use, server])
    assert m.tool_calls == [use, server]
    assert assistant([server]).tool_calls == [server]
    assert assistant("plain").tool_calls == []


def test_i133_tool_result_error_flag() -> None:
    ok = ToolResultBlock(tool_use_id="1", content="fine")
    bad = ToolResultBlock(tool_use_id="1", content="no", is_error=True)
    assert (ok.is_error, bad.is_error) == (False, True)
    assert tool_results([ok]).role == "user"


def test_i134_text_joins_text_blocks_only() -> None:
    m = assistant([TextBlock(text="a"), ImageBlock(mime_type="image/png", data="x"),
                   TextBlock(text="b")])
    assert m.text == "a\nb"
    assert assistant([ImageBlock(mime_type="image/png", data="x")]).text == ""
    assert assistant([]).text == ""


def test_round_trip_through_json() -> None:
    m = assistant([TextBlock(text="t"), ToolUseBlock(id="1", name="n", input={"a": [1]})])
    assert Message.model_validate_json(m.model_dump_json()) == m


def test_repair_adds_missing_results_and_drops_orphans() -> None:
    calls = assistant([ToolUseBlock(id="a", name="x"), ToolUseBlock(id="b", name="x")])
    history = [user("go"), calls, tool_results([ToolResultBlock(tool_use_id="b", content="B"),
                                                ToolResultBlock(tool_use_id="zz", content="?")])]
    fixed = repair_history(history)
    results = fixed[2].tool_result_blocks
    assert [r.tool_use_id for r in results] == ["a", "b"]
    assert results[0].is_error and results[0].content == INTERRUPTED_RESULT
    assert repair_history(fixed) == fixed  # idempotent


def test_repair_closes_a_trailing_tool_use_and_drops_empty_messages() -> None:
    fixed = repair_history([user("go"), assistant([]), assistant([ToolUseBlock(id="a", name="x")])])
    assert [m.role for m in fixed] == ["user", "assistant", "user"]
    assert fixed[-1].tool_result_blocks[0].tool_use_id == "a"
