"""The agent loop (internal): config, turn loop, tool executor, provider retry.

Public entry points are ``alloy_nb.api`` and ``alloy_nb.session``; they build an
``AgentConfig``, an ``AgentState`` and an ``Emitter`` and call ``run_loop``.
"""

from __future__ import annotations

from alloy_nb.agent.config import AgentConfig
from alloy_nb.agent.turn import CONTINUATION_PROMPT, new_emitter, run_loop

__all__ = ["CONTINUATION_PROMPT", "AgentConfig", "new_emitter", "run_loop"]
