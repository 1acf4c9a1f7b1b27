"""Helpers shared by the HTTP provider tests (``from .conftest import call, req``)."""

from __future__ import annotations

import asyncio

from alloy_nb.messages import Message, user
from alloy_nb.providers import Provider, ProviderRequest
from alloy_nb.providers.base import Completion


def req(*messages: Message, **kw) -> ProviderRequest:
    """A request for ``messages`` (a single ``user("hi")`` when none are given)."""
    return ProviderRequest(messages=list(messages) or [user("hi")], **kw)


def call(
    p: Provider, request: ProviderRequest, stream: bool
) -> tuple[Completion, list[tuple[str, str]]]:
    """One ``complete`` (or ``stream``) run to the end: the Completion and the deltas seen."""
    deltas: list[tuple[str, str]] = []

    async def go() -> Completion:
        if stream:
            return await p.stream(request, lambda k, t: deltas.append((k, t)))
        return await p.complete(request)

    return asyncio.run(go()), deltas
