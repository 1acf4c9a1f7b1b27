"""A notebook executed without a browser (nbclient, ``nbconvert --execute``) is a document:
every finished output is static Markdown, no widget mimetype is left in it, and the
answers, tool cards, approval verdicts and chat turns are all there, offline.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from alloy_nb.testing.env import without_api_keys

pytestmark = pytest.mark.kernel

WIDGET = "application/vnd.jupyter.widget-view+json"
CELLS = [
    "%load_ext alloy_nb\nimport asyncio\nfrom alloy_nb import Session\n"
    "from alloy_nb.providers.scripted import Scripted",
    "p = Scripted([Scripted.tool_calls(('run_python', {'code': 'answer = 6 * 7'})),\n"
    "              'The **blocking** answer is 42.\\n\\n| col | val |\\n|---|---|\\n| a | 1 |',\n"
    "              'The background answer, awaited.', 'The background answer, unawaited.'],\n"
    "             chunk_size=3, chunk_delay=0.002)\n"
    "%alloy provider p\n%alloy tools run_python\n%alloy approve always",
    "%%alloy -o r\nCompute 6*7 with Python.",
    "%%alloy --background -o h\nNow in the background.",
    "r2 = await h\nprint(r2.status)",
    "%%alloy --background\nOnce more, not awaited.",
    "await asyncio.sleep(3)  # the run above ends while this cell runs",
    "chat = Session(provider=Scripted(['Chat reply one.', 'Chat reply two.']))\nchat",
    "chat.chat('First chat question?');",
    "%%alloy -s chat\nSecond chat question?",
]


def _notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
    return path


def _markdown(cell: Any) -> str:
    return "\n\n".join(o.get("data", {}).get("text/markdown", "") for o in cell.outputs)


def _env() -> dict[str, str]:
    env = without_api_keys(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    return env


def test_executed_notebook_has_no_widget_and_every_answer(tmp_path: Path,
                                                          monkeypatch) -> None:
    from nbclient import NotebookClient

    for key in set(os.environ) - set(without_api_keys(os.environ)):
        monkeypatch.delenv(key)  # offline: the kernel inherits no API key
    nb = nbformat.read(_notebook(tmp_path / "doc.ipynb"), as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    for cell in nb.cells:
        for output in cell.outputs:
            assert WIDGET not in output.get("data", {}), (cell.source, output)
            assert output.output_type != "error", output
    blocking = _markdown(nb.cells[2])
    assert "The **blocking** answer is 42." in blocking and "| a | 1 |" in blocking
    assert "<summary>🔧 run_python ✓" in blocking and "answer = 6 * 7" in blocking
    assert "✋ run_python: ✓ approved (approve policy: always)" in blocking
    assert "✓ completed" in blocking
    assert "The background answer, awaited." in _markdown(nb.cells[3])
    # published again after the cell during which it ended: nbclient recorded that
    assert "The background answer, unawaited." in _markdown(nb.cells[5])
    chat = _markdown(nb.cells[7])
    for said in ("> First chat question?", "Chat reply one.", "> Second chat question?",
                 "Chat reply two.", "**🧑 You**", "**🤖 Assistant**"):
        assert said in chat, said


def test_nbconvert_execute_to_html_shows_the_answers_offline(tmp_path: Path) -> None:
    path = _notebook(tmp_path / "convert.ipynb")
    done = subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--execute", "--to", "html",
         "--ExecutePreprocessor.timeout=120", str(path)],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    page = (tmp_path / "convert.html").read_text()
    for shown in ("<strong>blocking</strong> answer is 42.", "<td>a</td>",
                  "<summary>🔧 run_python ✓", "run_python: ✓ approved",
                  "The background answer, awaited.", "The background answer, unawaited.",
                  "Chat reply one.", "Chat reply two.", "Second chat question?"):
        assert shown in page, shown
    assert f'<script type="{WIDGET}">' not in page  # no widget output to embed
