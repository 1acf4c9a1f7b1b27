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


def test_json_round_trip_of_every_block_type_including_raw() -> None:
    from alloy_nb.messages import ThinkingBlock
    from alloy_nb.result import Result

    reply = assistant([
        ThinkingBlock(thinking="hmm", signature="sig=="), TextBlock(text="t"),
        RawBlock(type="redacted_thinking", data="opaque", nested={"a": [1, {"b": None}]}),
        ServerToolUseBlock(id="s1", name="code_execution", input={"code": "1+1"}),
        RawBlock(type="code_execution_tool_result", tool_use_id="s1", content={"out": "2"}),
        ToolUseBlock(id="u1", name="n", input={"x": [1.5, "y"]}),
    ])
    answer = user([ImageBlock(mime_type="image/png", data="aGk="),
                   ToolResultBlock(tool_use_id="u1", content="r", is_error=True)])
    for m in (reply, answer):
        back = Message.model_validate_json(m.model_dump_json())
        assert back == m and [type(b) for b in back.content] == [type(b) for b in m.content]
        assert Message.model_validate(m.model_dump()) == m
    result = Result(messages=[user("go"), reply, answer])
    assert Result.model_validate_json(result.model_dump_json()) == result
    assert reply.content[2].model_dump() == {  # RawBlock keeps the provider's keys verbatim
        "type": "redacted_thinking", "data": "opaque", "nested": {"a": [1, {"b": None}]}}


def _is_valid_history(history: list[Message]) -> bool:
    """Every tool_use answered, in order, by the next (user) message; no orphan or misplaced
    results; no empty messages."""
    for i, m in enumerate(history):
        if not m.content:
            return False
        calls = [b.id for b in m.content if isinstance(b, ToolUseBlock)]
        results = [b.tool_use_id for b in m.content if isinstance(b, ToolResultBlock)]
        if m.role == "assistant":
            if results:
                return False
            if calls:
                nxt = history[i + 1] if i + 1 < len(history) else None
                if nxt is None or nxt.role != "user":
                    return False
                if [b.tool_use_id for b in nxt.tool_result_blocks] != calls:
                    return False
        elif results:
            prev = history[i - 1] if i else None
            if prev is None or prev.role != "assistant":
                return False
            if results != [b.id for b in prev.content if isinstance(b, ToolUseBlock)]:
                return False
    return True


def test_repair_is_valid_and_idempotent_on_random_histories() -> None:
    """Adversarial histories (fixed seed): dangling and duplicate calls, orphan and stray
    results (also in assistant messages), empty messages, consecutive roles, every block
    type. The repaired history is valid, repairing again changes nothing, and it
    survives a JSON round-trip."""
    import random

    from alloy_nb.messages import ThinkingBlock

    rng = random.Random(20240531)
    ids = ["a", "b", "c"]
    makers = [
        lambda: TextBlock(text=rng.choice(["x", "y"])),
        lambda: ToolUseBlock(id=rng.choice(ids), name="t", input={"k": rng.random()}),
        lambda: ServerToolUseBlock(id=rng.choice(ids), name="s"),
        lambda: ToolResultBlock(tool_use_id=rng.choice(ids), content="r",
                                is_error=rng.random() < 0.5),
        lambda: ThinkingBlock(thinking="th", signature=rng.choice([None, "sig"])),
        lambda: ImageBlock(mime_type="image/png", data="AA=="),
        lambda: RawBlock(type="redacted_thinking", data="zz"),
    ]
    for _ in range(1500):
        history = [
            Message(role=rng.choice(["user", "assistant"]),
                    content=[rng.choice(makers)() for _ in range(rng.randint(0, 4))])
            for _ in range(rng.randint(0, 7))
        ]
        fixed = repair_history(history)
        assert _is_valid_history(fixed), history
        assert repair_history(fixed) == fixed, history
        assert [Message.model_validate_json(m.model_dump_json()) for m in fixed] == fixed


def test_prompt_message_is_the_one_prompt_normalisation() -> None:
    import pytest

    from alloy_nb.errors import ConfigError
    from alloy_nb.messages import prompt_message

    assert prompt_message("hi") == user("hi")
    mine = assistant("earlier answer")
    assert prompt_message(mine) is mine
    assert prompt_message(None) is None
    with pytest.raises(ConfigError, match="prompt must be a str, a Message or None, got dict"):
        prompt_message({"role": "user"})  # type: ignore[arg-type]


def test_run_and_session_reject_a_bad_prompt_with_the_same_message() -> None:
    import pytest

    import alloy_nb as alloy
    from alloy_nb.errors import ConfigError
    from alloy_nb.providers.scripted import Scripted

    with pytest.raises(ConfigError) as one:
        alloy.run(42, provider=Scripted(["x"]))  # type: ignore[arg-type]
    session = alloy.Session(provider=Scripted(["x"]))
    with pytest.raises(ConfigError) as two:
        session.chat(42)  # type: ignore[arg-type]
    assert str(one.value) == str(two.value) == (
        "the prompt must be a str, a Message or None, got int")
    assert session.messages == []  # nothing was recorded
