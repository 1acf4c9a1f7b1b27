"""Media blocks a provider cannot send become a visible text note, never a silent drop.

The message model keeps audio, video and document blocks as ``RawBlock``s of type
``"audio"``/``"video"``/``"document"`` (``{"type", "mime_type", "data" | "uri"}``, the
reference's shapes). A protocol that has no place for one sends
``"[Unsupported media type for <Provider> provider: <type>]"`` instead (reference §5.3-5.5),
so the model knows something was there and the user can see why it was not used.
"""

from __future__ import annotations

from alloy_nb.messages import ContentBlock

__all__ = ["MEDIA_TYPES", "unsupported_media"]

MEDIA_TYPES = frozenset({"audio", "video", "document"})


def unsupported_media(provider: str, block: ContentBlock) -> str | None:
    """The note to send in place of ``block``, or None when it is not a media block."""
    kind = block.type
    if kind not in MEDIA_TYPES:
        return None
    return f"[Unsupported media type for {provider} provider: {kind}]"
