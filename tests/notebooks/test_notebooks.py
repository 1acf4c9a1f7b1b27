"""Every tutorial notebook runs top to bottom in a real kernel, offline, and says what it should.

Each notebook is executed once per session with nbclient (kernel ``python3`` of this venv,
no API keys in its environment, so every notebook runs on the offline demo provider) from a
temporary copy of ``notebooks/``, so files the notebooks write never touch the repository.
Assertions read kernel-side output (``print``, displayed values) and, for widgets, the
widget state nbclient recorded while the cell ran; output a background task produces after
its cell finished is dropped by nbclient, so the notebooks ``await`` before printing.

The checks that need no kernel guard the repository copies: saved without outputs, no
widget state, nothing that looks like an API key, and in sync with ``notebooks/_build.py``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from alloy_nb.testing.env import without_api_keys

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
NOTEBOOK_NAMES = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
TIME_LIMIT_S = 60.0  # the promise in the README: each runs in well under a minute offline

KEY_PATTERNS = [
    re.compile(r"sk-ant-[A-Za-z0-9_\-]{16,}"),  # Anthropic
    re.compile(r"sk-(?:proj-|svcacct-)?[A-Za-z0-9_\-]{20,}"),  # OpenAI
    re.compile(r"AIza[0-9A-Za-z_\-]{30,}"),  # Google
    re.compile(r"gsk_[A-Za-z0-9]{20,}"),  # Groq
    re.compile(r"xai-[A-Za-z0-9]{20,}"),  # xAI
]
DEMO_NOTE = "offline demo reply"


# ---------------------------------------------------------------------------------------
# Running notebooks
# ---------------------------------------------------------------------------------------


class Executed:
    """An executed notebook plus helpers to find cells and read what they showed."""

    def __init__(self, nb: nbformat.NotebookNode, seconds: float,
                 created: frozenset[str] = frozenset()) -> None:
        self.nb = nb
        self.seconds = seconds
        self.created = created  # files the run added to the notebook's folder
        self.widget_state: dict[str, Any] = (
            nb.metadata.get("widgets", {})
            .get("application/vnd.jupyter.widget-state+json", {})
            .get("state", {})
        )

    def cell(self, snippet: str) -> nbformat.NotebookNode:
        """The one code cell whose source contains ``snippet``."""
        found = [c for c in self.nb.cells if c.cell_type == "code" and snippet in c.source]
        assert len(found) == 1, f"expected one cell containing {snippet!r}, found {len(found)}"
        return found[0]

    def text(self, snippet: str) -> str:
        """Everything the cell showed: streams, text/markdown/html/plain, errors, widgets."""
        return self.output_text(self.cell(snippet))

    def output_text(self, cell: nbformat.NotebookNode) -> str:
        parts: list[str] = []
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                parts.append(out.text)
            elif out.output_type == "error":
                parts.append(f"{out.ename}: {out.evalue}")
            else:
                data = out.get("data", {})
                for mime in ("text/markdown", "text/html", "text/plain"):
                    if mime in data:
                        parts.append(_as_text(data[mime]))
                view = data.get("application/vnd.jupyter.widget-view+json")
                if view:
                    parts.append(self._widget_text(view["model_id"], set()))
        return "\n".join(parts)

    def _widget_text(self, model_id: str, seen: set[str]) -> str:
        """Text held in a widget's state and in its children's, recursively."""
        if model_id in seen or model_id not in self.widget_state:
            return ""
        seen.add(model_id)
        state = self.widget_state[model_id].get("state", {})
        parts = []
        for key in ("value", "description", "placeholder", "tooltip"):
            if isinstance(state.get(key), str):
                parts.append(state[key])
        parts.extend(t for t in state.get("titles") or [] if isinstance(t, str))  # Accordion
        for out in state.get("outputs", []):  # an Output widget's captured outputs
            parts.append(self.output_text(nbformat.from_dict({"outputs": [out]})))
        for ref in _model_refs(state):
            parts.append(self._widget_text(ref, seen))
        return "\n".join(p for p in parts if p)

    def all_text(self) -> str:
        return "\n".join(self.output_text(c) for c in self.nb.cells if c.cell_type == "code")


def _as_text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _model_refs(value: Any) -> Iterator[str]:
    if isinstance(value, str) and value.startswith("IPY_MODEL_"):
        yield value[len("IPY_MODEL_") :]
    elif isinstance(value, list):
        for item in value:
            yield from _model_refs(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _model_refs(item)


def _kernel_env() -> dict[str, str]:
    """This environment minus API keys: the notebooks must pick the offline provider."""
    env = without_api_keys(os.environ)
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # quiets the debugger warning on stderr
    return env


def execute(path: Path, workdir: Path) -> Executed:
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=120,
        resources={"metadata": {"path": str(workdir)}},
    )
    t0 = time.monotonic()
    client.execute(env=_kernel_env())
    return Executed(nb, time.monotonic() - t0)


@pytest.fixture(scope="session")
def run_notebook(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Executed]:
    """Execute a notebook (once per session) from a fresh temp copy of ``notebooks/``."""
    cache: dict[str, Executed] = {}

    def run(name: str) -> Executed:
        if name not in cache:
            workdir = tmp_path_factory.mktemp(name.removesuffix(".ipynb"))
            shutil.copytree(
                NOTEBOOKS,
                workdir,
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
            )
            before = {p.relative_to(workdir).as_posix() for p in workdir.rglob("*")}
            ran = execute(workdir / name, workdir)
            after = {p.relative_to(workdir).as_posix() for p in workdir.rglob("*")}
            ran.created = frozenset(after - before)
            cache[name] = ran
        return cache[name]

    return run


# ---------------------------------------------------------------------------------------
# The kernel is this venv's
# ---------------------------------------------------------------------------------------


@pytest.mark.kernel
def test_kernel_python3_is_this_environment(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("import sys; print(sys.prefix)")],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )
    path = tmp_path / "probe.ipynb"
    nbformat.write(nb, path)
    ran = execute(path, tmp_path)
    assert ran.all_text().strip() == sys.prefix, (
        "kernelspec python3 does not run this environment's Python; check "
        "`jupyter kernelspec list` for a user-level python3 spec"
    )


# ---------------------------------------------------------------------------------------
# Every notebook runs, fast, with no errors and the demo banner
# ---------------------------------------------------------------------------------------


@pytest.mark.kernel
@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebook_runs_offline(run_notebook: Callable[[str], Executed], name: str) -> None:
    ran = run_notebook(name)  # nbclient raises CellExecutionError on any failing cell
    assert ran.seconds < TIME_LIMIT_S, f"{name} took {ran.seconds:.1f}s"
    for cell in ran.nb.cells:
        if cell.cell_type == "code":
            errors = [o for o in cell.outputs if o.output_type == "error"]
            assert not errors, f"{name}: {cell.source[:60]!r} raised {errors[0].ename}"
    # The provider cell says plainly that the replies are scripted.
    banner = ran.text("provider = pick_provider()")
    assert "Offline demo provider" in banner
    assert "scripted" in banner


# ---------------------------------------------------------------------------------------
# 01 quickstart
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def quickstart(run_notebook: Callable[[str], Executed]) -> Executed:
    return run_notebook("01_quickstart.ipynb")


@pytest.mark.kernel
def test_quickstart_streamed_answer(quickstart: Executed) -> None:
    out = quickstart.text("What is 17 * 23?")
    assert "391" in out  # 17 * 23
    assert DEMO_NOTE in out  # the reply itself says it is scripted
    # the banner is said once per notebook (the provider cells), not again in each cell
    assert "Offline demo provider" not in out
    assert "offline demo: scripted replies" in quickstart.text("%alloy provider provider")


@pytest.mark.kernel
def test_quickstart_tool_call_card(quickstart: Executed) -> None:
    out = quickstart.text("Use add to add 2 and 40.")
    assert "🔧 add" in out  # the tool card's title (widget) or its Markdown fallback
    assert "42" in out  # the tool's result, as summarised by the demo


@pytest.mark.kernel
def test_quickstart_output_variable(quickstart: Executed) -> None:
    out = quickstart.text("display(Markdown(answer.text))")
    assert "42" in out  # 6 * 7
    assert "completed" in out


@pytest.mark.kernel
def test_quickstart_continues_conversation(quickstart: Executed) -> None:
    out = quickstart.text("Now what is 42 + {bonus}?")
    assert "50" in out  # {bonus} interpolated from the notebook: 42 + 8
    history = quickstart.text("%alloy history")
    assert "17 * 23" in history


@pytest.mark.kernel
def test_quickstart_python_api(quickstart: Executed) -> None:
    one_shot = quickstart.text('result = alloy.run("What is 2 + 2?"')
    assert "**4**" in one_shot  # the answer, rendered as Markdown with the run's footer
    assert "completed" in one_shot
    follow = quickstart.text("follow_up = alloy.run(")
    assert "40" in follow
    assert "4 messages in the history" in follow
    streamed = quickstart.cell("streamed = alloy.stream(")
    assert "['add']" in quickstart.output_text(streamed)
    final = [o.data["text/markdown"] for o in streamed.outputs
             if "text/markdown" in o.get("data", {})]
    assert len(final) == 1 and "42" in final[0]  # one display, updated to the whole answer


@pytest.mark.kernel
def test_quickstart_background_run_stops(quickstart: Executed) -> None:
    assert "cancelled" in quickstart.text("stopped = await job")


# ---------------------------------------------------------------------------------------
# 02 data assistant
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def data_assistant(run_notebook: Callable[[str], Executed]) -> Executed:
    return run_notebook("02_data_assistant.ipynb")


@pytest.mark.kernel
def test_data_assistant_sees_the_dataframe(data_assistant: Executed) -> None:
    out = data_assistant.text("Which columns of the penguins DataFrame have missing values?")
    assert "inspect_variable" in out
    for column in ("bill_length_mm", "body_mass_g", "sex"):  # real columns of the CSV
        assert column in out


@pytest.mark.kernel
def test_data_assistant_python_api(data_assistant: Executed) -> None:
    table = data_assistant.text("tools = notebook_tools()")
    assert "list_variables" in table
    assert "inspect_variable" in table
    assert "flipper_length_mm" in data_assistant.text("Markdown(result.text)  # the answer")


@pytest.mark.kernel
def test_data_assistant_run_python_needs_approval(data_assistant: Executed) -> None:
    out = data_assistant.text("def approve(tool_name, code)")
    assert "approved: penguins.describe().round(1)" in out
    assert "refused : del penguins" in out
    assert "penguins still defined: True" in out
    assert "count" in out  # describe() really ran, in the notebook's namespace


# ---------------------------------------------------------------------------------------
# 03 tools and middleware
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tools_nb(run_notebook: Callable[[str], Executed]) -> Executed:
    return run_notebook("03_tools_and_middleware.ipynb")


@pytest.mark.kernel
def test_tools_function_tool(tools_nb: Executed) -> None:
    out = tools_nb.text("for prompt in ['Call convert_grams with grams=5200")
    assert "-> ok" in out
    assert "5.2" in out  # 5200 g in kg
    assert "unknown unit 'stone'" in out  # the ToolError the model sees


@pytest.mark.kernel
def test_tools_file_tools_confined(tools_nb: Executed) -> None:
    read = tools_nb.text('Use the read tool on "notes.txt"')
    assert "Gentoo penguins are the fastest swimmers." in read
    refused = tools_nb.text('Use the read tool on "../secret.txt"')
    assert "outside" in refused
    assert "outside the sandbox" not in refused  # the secret's content never came back


@pytest.mark.kernel
def test_tools_middleware_blocks(tools_nb: Executed) -> None:
    out = tools_nb.text("class NoDelete(Middleware)")
    assert "Blocked: deleting files is not allowed here" in out
    assert "sandbox still there: True" in out


@pytest.mark.kernel
def test_tools_until_tool_structured_output(tools_nb: Executed) -> None:
    out = tools_nb.text("class RecordPenguin(Tool)")
    assert "Penguin(species='Gentoo', island='Biscoe', body_mass_g=5200)" in out
    nudged = tools_nb.text("nudged = alloy.run(")
    assert "Penguin(species='Gentoo', island='Biscoe', body_mass_g=5200)" in nudged
    assert "record_penguin" in nudged or "tool_use" in nudged


# ---------------------------------------------------------------------------------------
# 04 sessions and background runs
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sessions_nb(run_notebook: Callable[[str], Executed]) -> Executed:
    return run_notebook("04_sessions_and_background.ipynb")


@pytest.mark.kernel
def test_sessions_chat(sessions_nb: Executed) -> None:
    out = sessions_nb.text('r1 = session.chat("Hello! Can you help me with sums?")')
    assert "150" in out  # add(144, 6)
    assert "['add']" in out


@pytest.mark.kernel
def test_sessions_chat_widget_displayed(sessions_nb: Executed) -> None:
    cell = sessions_nb.cell("session  # a chat box")
    mimes = {m for o in cell.outputs for m in o.get("data", {})}
    assert "application/vnd.jupyter.widget-view+json" in mimes or "text/markdown" in mimes


@pytest.mark.kernel
def test_sessions_cancel_request(sessions_nb: Executed) -> None:
    assert "cancelled: True" in sessions_nb.text("request_id = slow.send_message(")
    assert "status: cancelled" in sessions_nb.text("stopped = await slow.result(request_id)")
    assert "cancelled" in sessions_nb.text("story = await job")


@pytest.mark.kernel
def test_sessions_usage_and_cost(sessions_nb: Executed) -> None:
    usage = sessions_nb.text('print("session:", session.usage)')
    assert "tokens" in usage
    assert "$0.0000" in usage  # the offline demo is priced at zero, not left unpriced
    assert "$" in sessions_nb.text("priced = session.usage.with_cost(")
    [table] = [o.data["text/plain"] for o in sessions_nb.cell("%alloy usage").outputs
               if o.output_type == "display_data"]  # session.chat() from Python counts too
    rows = {line.split()[0]: line.split() for line in table.splitlines()[1:] if line.strip()}
    assert rows["session"][3] == "2" and rows["slow"][3] == "2"  # chats; stopped requests
    assert rows["slow"][4] == "2"  # both of slow's requests were stopped on purpose


# ---------------------------------------------------------------------------------------
# 05 teaching the loop
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def teaching_nb(run_notebook: Callable[[str], Executed]) -> Executed:
    return run_notebook("05_teaching_the_loop.ipynb")


@pytest.mark.kernel
def test_teaching_timeline(teaching_nb: Executed) -> None:
    out = teaching_nb.text("def timeline(events)")
    for event in ("turn_start", "tool_start", "tool_end", "turn_end", "done"):
        assert event in out
    assert out.index("tool_start") < out.index("tool_end")
    assert "multiply({'a': 12, 'b': 34})" in out  # turn 1: the model asks, the harness runs
    assert "multiply returns '408'" in out
    assert "after 2 turn(s)" in out  # turn 2: the model answers from the result


@pytest.mark.kernel
def test_teaching_messages_table(teaching_nb: Executed) -> None:
    table = teaching_nb.text("rows = [")
    for block in ("text", "tool_use", "tool_result"):
        assert block in table
    assert "408" in teaching_nb.text("Markdown(result.text)  # the final")  # 12 * 34


@pytest.mark.kernel
def test_teaching_scripted_loop(teaching_nb: Executed) -> None:
    out = teaching_nb.text("script = Scripted([")
    assert "tool_start" in out
    assert "6 times 7 is 42." in out


# ---------------------------------------------------------------------------------------
# The repository copies: clean, key-free, generated
# ---------------------------------------------------------------------------------------


def _repo_notebooks() -> list[Path]:
    """Every .ipynb in the repository, without descending into virtualenvs or caches."""
    found = []
    for root, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("node_modules", "venv")]
        found += [Path(root) / f for f in files if f.endswith(".ipynb")]
    return sorted(found)


def test_expected_notebooks_exist() -> None:
    assert NOTEBOOK_NAMES == [
        "01_quickstart.ipynb",
        "02_data_assistant.ipynb",
        "03_tools_and_middleware.ipynb",
        "04_sessions_and_background.ipynb",
        "05_teaching_the_loop.ipynb",
        "06_batch_over_data.ipynb",
    ]


@pytest.mark.parametrize("path", _repo_notebooks(), ids=lambda p: p.name)
def test_notebook_saved_clean(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert "widgets" not in nb.metadata, "saved widget state can hold a typed key"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"stored outputs in {cell.source[:60]!r}"
            assert cell.execution_count is None


@pytest.mark.parametrize("path", _repo_notebooks(), ids=lambda p: p.name)
def test_notebook_holds_no_key(path: Path) -> None:
    raw = path.read_text(encoding="utf-8")
    for pattern in KEY_PATTERNS:
        match = pattern.search(raw)
        assert match is None, f"{path.name} contains something like an API key"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            # %env KEY=... and os.environ[...] = "..." end up saved in the notebook.
            assert not re.match(r"\s*%env\s+\w*KEY", line), line
            assert not re.search(r"environ\[[^]]*KEY[^]]*\]\s*=\s*['\"]", line), line
            assert not re.search(r"api_key\s*=\s*['\"][^'\"]+['\"]", line), line


def test_notebooks_match_generator() -> None:
    """The .ipynb files are exactly what ``notebooks/_build.py`` writes."""
    spec = importlib.util.spec_from_file_location("_nb_build", NOTEBOOKS / "_build.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    for name, cells in build.NOTEBOOKS.items():
        expected = build.build(name, cells())
        saved = json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))
        assert saved == json.loads(nbformat.writes(expected)), (
            f"{name} differs from notebooks/_build.py; run `python notebooks/_build.py`"
        )


# ---------------------------------------------------------------------------------------
# The notebook as a document (issue 10)
# ---------------------------------------------------------------------------------------

_PRINTED_TEXT = re.compile(r"print\([^)\n]*\.text\b")
_STOPS = ("%alloy cancel", "%alloy stop", "cancel_request(", ".cancel()")


def _code_cells(path: Path) -> list[nbformat.NotebookNode]:
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_answers_are_never_printed_as_raw_markdown(name: str) -> None:
    for cell in _code_cells(NOTEBOOKS / name):
        assert not _PRINTED_TEXT.search(cell.source), (
            f"{name}: {cell.source[:80]!r} prints an answer; show it with Markdown(...)")


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_a_cell_that_stops_a_run_says_it_is_on_purpose(name: str) -> None:
    for cell in _code_cells(NOTEBOOKS / name):
        if any(stop in cell.source for stop in _STOPS):
            assert "on purpose" in cell.source, f"{name}: {cell.source[:80]!r}"


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_saved_file_is_what_jupyter_would_save(name: str) -> None:
    """Opening must not mark the notebook modified: nbformat 4.5, the kernel's own
    language_info, a kernelspec, an id on every cell, and nbformat's exact serialisation
    with a trailing newline (what jupyter_server writes on save). The browser half is
    ``tests/browser/test_notebook_files.py``."""
    from ipykernel.ipkernel import IPythonKernel

    raw = (NOTEBOOKS / name).read_text(encoding="utf-8")
    nb = nbformat.reads(raw, as_version=nbformat.NO_CONVERT)
    assert (nb.nbformat, nb.nbformat_minor) == (4, nbformat.v4.nbformat_minor) == (4, 5)
    assert raw == nbformat.writes(nb) + "\n"
    kernel_info = dict(IPythonKernel.language_info)
    saved = dict(nb.metadata["language_info"])
    assert saved.pop("version") and kernel_info.pop("version")  # the one per-machine field
    assert saved == kernel_info
    assert set(nb.metadata) == {"kernelspec", "language_info"}
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,64}", c.id) for c in nb.cells)


@pytest.mark.kernel
@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_run_all_writes_nothing_next_to_the_notebook(run_notebook: Callable[[str], Executed],
                                                    name: str) -> None:
    assert run_notebook(name).created == frozenset(), "scratch files belong in a temp dir"


@pytest.mark.kernel
@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_run_all_gives_complete_answers_rendered_as_markdown(
        run_notebook: Callable[[str], Executed], name: str) -> None:
    ran = run_notebook(name)
    cells = [c for c in ran.nb.cells if c.cell_type == "code"]
    for i, cell in enumerate(cells):
        later = "\n".join(c.source for c in cells[i + 1:i + 3])
        stopped_on_purpose = "--background" in cell.source and "on purpose" in later
        if cell.source.startswith("%%alloy") and not stopped_on_purpose:
            final = [o.data["text/markdown"] for o in cell.outputs if "text/markdown" in
                     o.get("data", {})]
            assert final and "✓ completed" in final[-1], f"{name}: {cell.source[:60]!r}"
    markdown_answers = [c for c in cells if any(
        "text/markdown" in o.get("data", {}) for o in c.outputs) and "Markdown(" in c.source]
    assert markdown_answers, f"{name} shows no answer as Markdown"
