"""Issue 10 (second half) in a shell: usage of every request, the demo banner once,
errors in magic terms.

Through a real InteractiveShell (terminal semantics) with ``Scripted`` providers; the
kernel path (a Session driven from a Python cell, a stopped background run) is in
``test_document_kernel.py``.
"""

from __future__ import annotations

import re
import time

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

import alloy_nb.jupyter as J
from alloy_nb import Session
from alloy_nb.providers.scripted import Scripted

from .conftest import run


def _rows(text: str) -> dict[str, list[str]]:
    """The table's rows by session name (split on runs of 2+ spaces: cells may hold one)."""
    rows = {}
    for line in text.splitlines()[1:]:
        cells = re.split(r"\s{2,}", line.strip())
        if cells and not line.startswith("-") and len(cells) >= 8:
            rows[cells[0]] = cells
    return rows


def test_usage_counts_python_chat_and_magic_cells_per_session_provider_model(shell) -> None:
    shell.user_ns["p"] = Scripted(["a", "b"], usage=(100, 20))
    shell.user_ns["tutor"] = Session(  # priced: a known Anthropic model name
        provider=Scripted(["x", "y"], model="claude-sonnet-4-6", usage=(1000, 200)))
    with capture_output():
        run(shell, "%alloy provider p")
        run(shell, "%%alloy\nq1\n")
        run(shell, "r = tutor.chat('from Python')\nr2 = tutor.chat('again')")  # no magic
        run(shell, "%%alloy -s other\nq2\n")
    table = J.controller(shell).usage_report()
    rows = _rows(table.text())
    assert set(rows) == {"default", "tutor", "other", "total"}, table.text()
    assert rows["tutor"][1:5] == ["scripted", "claude-sonnet-4-6", "2", "0"]
    assert rows["tutor"][5:7] == ["2,000", "400"]
    assert rows["default"][5:7] == ["100", "20"]
    assert rows["total"][1:5] == ["4", "0", "2,200", "440"]
    # honest cost: the scripted model has no price, so the total is a lower bound
    assert rows["default"][-1] == "unpriced" and rows["tutor"][-1].startswith("$")
    assert rows["total"][-1].startswith("≥ $") and "partly unpriced" in rows["total"][-1]
    assert "unpriced: no known price for scripted:scripted" in table.text()
    md = table.markdown()
    assert "\\$" in md and "$" not in md.replace("\\$", "")  # "$..$" would render as math


def test_usage_table_is_aligned_and_has_a_markdown_twin(shell) -> None:
    shell.user_ns["p"] = Scripted(["a", "b"], usage=(123456, 7))
    with capture_output():
        run(shell, "%alloy provider p")
        run(shell, "%%alloy -s a_long_session_name\nq\n")
        run(shell, "%%alloy\nq\n")
    table = J.controller(shell).usage_report()
    lines = [line for line in table.text().splitlines() if not line.startswith("unpriced")]
    header = lines[0]
    for column in ("requests", "in", "out", "cache read", "cache write"):
        end = header.index(column) + len(column)  # numbers are right-aligned under it
        for line in lines[1:]:
            if not line.startswith("-"):
                assert line[end - 1].isdigit() and line[end:end + 1] in ("", " "), (column, line)
    md = table.markdown()
    assert md.splitlines()[1].startswith("| :--- | :--- | :--- | ---: |")
    assert "| a_long_session_name | scripted | scripted | 1 | 0 | 123,456 | 7 |" in md
    assert "| **total** |" in md
    bundle = table._repr_mimebundle_()
    assert bundle["text/plain"] == table.text() and bundle["text/markdown"] == md


def test_usage_of_one_session_and_the_empty_case(shell) -> None:
    assert J.controller(shell).usage_report().text() == "no requests yet"
    shell.user_ns["p"] = Scripted(["a", "b"])
    with capture_output() as cap:
        run(shell, "%alloy provider p")
        run(shell, "%%alloy\nq\n")
        run(shell, "%%alloy -s other\nq\n")
        run(shell, "%alloy usage other")
    rows = _rows(cap.stdout.split("%alloy usage")[-1])
    assert "other" in rows and "default" not in rows
    assert J.controller(shell).usage_report("nobody").text() == \
        "no requests yet in session 'nobody'"


def test_stopped_run_counts_the_usage_the_session_recorded(shell) -> None:
    """The table reads the core's per-request ``run_usage`` (what the provider reported,
    also for a cancelled request), never a count of its own."""
    slow = Session(provider=Scripted(["slow " * 500], chunk_size=1, chunk_delay=0.005,
                                     usage=(77, 33)))
    shell.user_ns["slow"] = slow
    with capture_output():
        handle = run(shell, "%%alloy -s slow --background\nq\n")
        time.sleep(0.3)
        run(shell, "%alloy cancel slow")
        result = handle.result(timeout=10)
    assert result.status == "cancelled"
    recorded = slow.last_result.run_usage
    row = _rows(J.controller(shell).usage_report().text())["slow"]
    assert row[3:5] == ["1", "1"]  # one request, stopped
    assert row[5:7] == [f"{recorded.input_tokens:,}", f"{recorded.output_tokens:,}"]


def test_demo_banner_once_per_kernel(shell) -> None:
    with capture_output() as cap:
        run(shell, "%%alloy\nWhat is 2+2?\n")
        run(shell, "%%alloy\nWhat is 3+3?\n")
        run(shell, "%%alloy -s other\nWhat is 4+4?\n")
    assert cap.stdout.count("Offline demo provider") == 1
    assert cap.stdout.count("offline demo reply") == 3  # each answer still says so
    banner = next(line for line in cap.stdout.splitlines() if "Offline demo provider" in line)
    assert len(banner) < 140  # one compact line


def test_choosing_the_demo_explicitly_is_the_banner(shell) -> None:
    with capture_output() as cap:
        run(shell, "%alloy provider demo")
        run(shell, "%%alloy\nWhat is 2+2?\n")
    assert "offline demo: scripted replies, not a model" in cap.stdout
    assert "Offline demo provider" not in cap.stdout


def test_a_missing_key_is_caught_before_any_run_in_magic_terms(shell, monkeypatch) -> None:
    for var in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(UsageError, match=r"^%%alloy --model openai:gpt-5.4: no API key\. "
                                         r"Set OPENAI_API_KEY") as exc:
        run(shell, "%%alloy --model openai:gpt-5.4\nhi\n")
    assert "getpass.getpass('OPENAI_API_KEY: ')" in str(exc.value)
    shell.user_ns["s"] = Session(provider="anthropic:claude-sonnet-4-6")  # made in Python
    with pytest.raises(UsageError, match=r"^%%alloy: no API key\. Set ANTHROPIC_API_KEY"):
        run(shell, "%%alloy -s s\nhi\n")
    assert shell.user_ns["s"].messages == []  # nothing was sent or recorded
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0000000000000000000000")
    with capture_output() as cap:
        run(shell, "%alloy provider anthropic:claude-sonnet-4-6")
    assert cap.stdout == "provider: anthropic:claude-sonnet-4-6\n"  # and never the key
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(UsageError, match=r"^%alloy model claude-haiku-4-5: no API key\."):
        run(shell, "%alloy model claude-haiku-4-5")


def test_errors_speak_in_magics(shell) -> None:
    with pytest.raises(UsageError) as exc:
        run(shell, "%alloy provider nonsense:thing")
    message = str(exc.value)
    assert "%alloy provider PREFIX:MODEL" in message and "(class, {config})" not in message


def test_one_shot_runs_count_too(shell) -> None:
    with capture_output():
        run(shell, "import alloy_nb as alloy\n"
                   "from alloy_nb.providers.scripted import Scripted\n"
                   "r = alloy.run('q', provider=Scripted(['a'], usage=(7, 3)))\n"
                   "r = alloy.stream('q', None, provider=Scripted(['b'], usage=(5, 1)))")
    rows = _rows(J.controller(shell).usage_report().text())
    assert rows["alloy.run"][1:7] == ["scripted", "scripted", "2", "0", "12", "4"]
