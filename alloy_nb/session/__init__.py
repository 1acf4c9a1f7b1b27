"""The long-lived agent: ``Session`` keeps a history across calls (see ``_session``).

``_session`` is the public face, ``_queue`` runs its requests one at a time, ``_request``
holds one request's record, ``_store`` saves, loads and exports it.
"""

from __future__ import annotations

from alloy_nb.errors import SessionFileError
from alloy_nb.messages import Prompt
from alloy_nb.session._session import Session
from alloy_nb.session._store import SessionSnapshot

__all__ = ["Prompt", "Session", "SessionFileError", "SessionSnapshot"]
