"""A deterministic per-prompt provider for batch tests (answers depend on the prompt, not
on the order requests arrive in, which concurrency makes arbitrary)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from alloy_nb.errors import BadRequestError
from alloy_nb.messages import Message, TextBlock, ToolUseBlock
from alloy_nb.providers.base import Completion, Provider, ProviderRequest
from alloy_nb.usage import Usage

#: 10 in / 5 out tokens at $1000/M each: 1.5 cents per item.
PRICED = {"echo": {"limit": 100_000, "input_price": 1000.0, "output_price": 1000.0}}


class Echo(Provider):
    name = "echo"

    def __init__(self, delay: float = 0.0, fail_on: str = "boom") -> None:
        self.model = "echo"
        self.delay = delay
        self.fail_on = fail_on
        self.in_flight = 0
        self.max_in_flight = 0
        self.prompts: list[str] = []

    async def complete(self, request: ProviderRequest) -> Completion:
        prompt = request.messages[-1].text or ""
        self.prompts.append(prompt)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        if self.fail_on in prompt:
            raise BadRequestError("bad item", status_code=400, provider="echo")
        usage = Usage(input_tokens=10, output_tokens=5)
        if any(t.name == "final_result" for t in request.tools):
            word = prompt.split()[-1]
            block: Any = ToolUseBlock(id=f"c{len(self.prompts)}", name="final_result",
                                      input={"word": word, "length": len(word)})
            return Completion(stop_reason="tool_use", usage=usage, model="echo",
                              message=Message(role="assistant", content=[block]))
        return Completion(stop_reason="end_turn", usage=usage, model="echo",
                          message=Message(role="assistant",
                                          content=[TextBlock(text=f"echo: {prompt}")]))


@pytest.fixture
def echo() -> Echo:
    return Echo()
