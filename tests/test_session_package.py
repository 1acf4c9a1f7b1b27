"""The shape of ``alloy_nb.session`` (issue 11): Session composes its request queue, keeps
its public home, and the store works on data without reaching into a Session."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import alloy_nb
from alloy_nb.errors import Busy
from alloy_nb.providers.scripted import Scripted
from alloy_nb.session import Session
from alloy_nb.session._queue import RequestQueue
from alloy_nb.usage import Usage

SESSION_PKG = Path(alloy_nb.__file__).parent / "session"


def test_session_composes_a_request_queue_instead_of_inheriting_one() -> None:
    assert Session.__mro__ == (Session, object)
    session = Session(provider=Scripted(["hi"]))
    assert isinstance(session._queue, RequestQueue)
    session.chat("hello")
    assert [m.role for m in session.messages] == ["user", "assistant"]
    assert session._queue.messages == session.messages


def test_session_keeps_its_public_names_and_the_display_hook_finds_it() -> None:
    import inspect

    from alloy_nb.jupyter.display import _SESSION

    # IPython's deferred printers match on (defining module, class name)
    assert (Session.__module__, Session.__qualname__) == _SESSION
    assert "class Session:" in inspect.getsource(Session)  # `Session??` shows the source
    assert alloy_nb.Session is Session
    from alloy_nb.session import SessionFileError, SessionSnapshot

    assert SessionFileError is alloy_nb.errors.SessionFileError
    assert SessionSnapshot.__name__ == "SessionSnapshot"


def _alloy_imports(path: Path) -> set[str]:
    """Every alloy_nb module a file names in an import, TYPE_CHECKING and functions too."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
    return {n for n in names if n.startswith("alloy_nb")}


@pytest.mark.parametrize("module", ["_store.py", "_request.py", "_queue.py"])
def test_helpers_never_import_the_session_itself(module: str) -> None:
    named = _alloy_imports(SESSION_PKG / module)
    assert not {"alloy_nb.session.Session", "alloy_nb.session._session"} & named


def test_restore_refuses_a_busy_queue_and_load_restores_through_it(tmp_path: Path) -> None:
    session = Session(provider=Scripted(["one"], model="m"))
    session.chat("q")
    path = session.save(tmp_path / "s.json")
    loaded = Session.load(path, provider=Scripted(["two"], model="m"))
    assert loaded.usage == session.usage and loaded.usage.input_tokens > 0
    assert (loaded.created_at, loaded.updated_at) == (session.created_at, session.updated_at)
    # restoring is for a fresh session: never while a request waits or runs
    loaded._queue._pending.append(object())  # type: ignore[arg-type]
    with pytest.raises(Busy):
        loaded._restore(Usage(), loaded.created_at, loaded.updated_at)
    loaded._queue._pending.clear()


def test_load_still_rejects_an_option_that_the_file_provides(tmp_path: Path) -> None:
    path = Session(provider=Scripted(["x"], model="m"), id="saved").save(tmp_path / "s.json")
    with pytest.raises(TypeError):
        Session.load(path, provider=Scripted(["y"], model="m"), id="other")
