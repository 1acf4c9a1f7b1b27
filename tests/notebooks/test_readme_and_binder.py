"""The README and the Binder folder say what is true: a newcomer's first five minutes.

* the "Set up" section gives exactly two commands, and ``.ci/run`` runs the second one;
* the Python tour runs as written, with its providers swapped for the offline demo;
* every ``%alloy`` subcommand and ``%%alloy`` option the README shows exists, and the
  README's magic snippets run on the demo provider in a real IPython shell;
* ``binder/`` installs this repository and writes a lazy-magic config under which
  ``%%alloy`` works in a kernel without ``%load_ext``; the badge opens the quickstart.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from alloy_nb.testing.env import without_api_keys

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
BINDER = REPO / "binder"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def section(title: str) -> str:
    """The README text under ``## title`` up to the next ``## `` heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def blocks(text: str, lang: str | None = None) -> list[str]:
    return [body for tag, body in FENCE.findall(text) if lang is None or tag == lang]


def run_python(code: str, cwd: Path, timeout: float = 60) -> str:
    """Run ``code`` in a fresh interpreter with no API keys; return its stdout."""
    env = without_api_keys(os.environ)
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert out.returncode == 0, f"child failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    return out.stdout


# ---------------------------------------------------------------------------------------
# Set up: exactly two commands
# ---------------------------------------------------------------------------------------


def test_setup_has_exactly_two_commands() -> None:
    commands = blocks(section("Set up"), "bash")
    assert len(commands) == 2, commands
    assert all(len(c.strip().splitlines()) == 1 for c in commands), "one line each, to copy"
    main, tests = (c.strip() for c in commands)
    # 1: installs into a fresh venv and executes the quickstart (offline when no key).
    assert main.startswith("python3 -m venv .venv && ")
    assert "pip install -e " in main
    assert "--execute" in main and "notebooks/01_quickstart.ipynb" in main
    assert (REPO / "notebooks/01_quickstart.ipynb").is_file()
    # 2: installs and runs every test; CI runs the very same two scripts.
    assert tests == "scripts/setup && scripts/test"
    ci = (REPO / ".ci/run").read_text(encoding="utf-8")
    assert re.search(r"^scripts/setup\b", ci, re.M) and re.search(r"^scripts/test\b", ci, re.M)


# ---------------------------------------------------------------------------------------
# The tour runs
# ---------------------------------------------------------------------------------------


def tour_code() -> str:
    (code,) = blocks(section("A short tour"), "python")
    return code


def test_tour_is_short() -> None:
    lines = [line for line in tour_code().splitlines() if line.strip()]
    assert len(lines) <= 22, f"the 'short tour' has {len(lines)} lines"


def test_tour_runs_on_the_demo_provider(tmp_path: Path) -> None:
    code = tour_code()
    # Every provider in the tour (a "vendor:model" string or `...`) becomes the offline demo.
    demo = re.sub(r'provider=(?:"[^"]*"|\.\.\.)', "provider=DEMO", code)
    assert "provider=DEMO" in demo and 'provider="' not in demo and "provider=..." not in demo
    (tmp_path / "README.md").write_text("# A project\n", encoding="utf-8")
    probe = textwrap.dedent(
        """
        import json
        from alloy_nb.providers.demo import Demo
        DEMO = Demo(delay_s=0)
        {code}
        print()
        print(json.dumps({{
            "calls": [[c.name, c.input, c.error] for c in result.tool_calls],
            "more": [more.status, len(more.messages)],
            "session": len(session.messages),
        }}))
        """
    ).format(code=demo)
    report: dict[str, Any] = json.loads(run_python(probe, tmp_path).strip().splitlines()[-1])
    assert report["calls"] == [["add", {"a": 2, "b": 3}, None]]  # the @tool ran
    assert report["more"] == ["completed", 6]  # continued from result.messages
    assert report["session"] == 2  # the Session kept the exchange


# ---------------------------------------------------------------------------------------
# The magics the README shows exist and run
# ---------------------------------------------------------------------------------------

SHELL_PROBE = """
import json
import pandas as pd
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

shell = InteractiveShell.instance()
shell.run_line_magic("load_ext", "alloy_nb")
with capture_output() as help_out:
    shell.run_line_magic("alloy", "help")
shell.user_ns["df"] = pd.DataFrame({"mass": [1.0, None, None], "name": ["a", "b", None]})
cells = json.loads(CELLS)
with capture_output() as shown:
    for cell in cells:
        shell.run_cell(cell)
job = shell.user_ns["job"]
final = job.result(timeout=30)
answer = shell.user_ns["answer"]
print(json.dumps({
    "help": help_out.stdout,
    "answer_calls": [c.name for c in answer.tool_calls],
    "answer_text": answer.text,
    "job": final.status,
}))
"""


def magic_snippets() -> list[str]:
    """The untagged fenced blocks of the README that use the magics."""
    return [b for b in blocks(README, "") if "%alloy" in b or "%%alloy" in b]


@pytest.fixture(scope="module")
def shell_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cells = []
    for snippet in magic_snippets():
        # The tour's provider line needs a key; the offline demo stands in for it.
        cells.append(re.sub(r"^%alloy provider \S+$", "%alloy provider demo", snippet, flags=re.M))
    code = f"CELLS = {json.dumps(json.dumps(cells))}\n" + SHELL_PROBE
    out = run_python(code, tmp_path_factory.mktemp("readme_magics"), timeout=90)
    return json.loads(out.strip().splitlines()[-1])


def test_readme_magic_options_exist(shell_report: dict[str, Any]) -> None:
    help_text = shell_report["help"]
    assert "%%alloy" in help_text
    shown = "\n".join(magic_snippets()) + "\n" + README
    for sub in set(re.findall(r"(?<!%)%alloy (\w+)", shown)):
        assert re.search(rf"%alloy {sub}\b", help_text), f"README shows `%alloy {sub}`"
    for line in re.findall(r"^%%alloy(.*)$", "\n".join(magic_snippets()), re.M):
        for flag in re.findall(r"(?:^|\s)(--?[a-z][\w-]*)", line):
            assert re.search(rf"\[{re.escape(flag)}\b", help_text), f"README shows `{flag}`"


def test_readme_magic_snippets_run(shell_report: dict[str, Any]) -> None:
    # `--tools notebook` let the demo list the variables and inspect the DataFrame.
    assert shell_report["answer_calls"] == ["list_variables", "inspect_variable"]
    assert "`mass`" in shell_report["answer_text"]  # the column with the most missing values
    assert shell_report["job"] == "completed"  # the --background run finished on its own


# ---------------------------------------------------------------------------------------
# Binder
# ---------------------------------------------------------------------------------------


def test_binder_layout() -> None:
    # repo2docker reads only binder/ when it exists: root configs (pyproject) are ignored.
    assert not (REPO / ".binder").exists(), "binder/ and .binder/ together is an error"
    assert (BINDER / "requirements.txt").is_file()
    post = BINDER / "postBuild"
    assert os.access(post, os.X_OK), "binder/postBuild must be executable"
    text = post.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text  # errors in postBuild are not fatal otherwise
    # It installs this repository (postBuild runs from the repo root).
    assert re.search(r"pip install [^\n]*-e \"?\.(\[[\w,]+\])?\"?(\s|$)", text), text


def test_readme_badge_opens_the_quickstart() -> None:
    links = re.findall(r"https://mybinder\.org/v2/gh/[^\s)>]+", README)
    assert links, "README has no Binder link"
    for link in links:
        assert link.endswith("?labpath=notebooks%2F01_quickstart.ipynb"), link
    assert "badge_logo.svg" in README


def lazy_magic_config() -> str:
    text = (BINDER / "postBuild").read_text(encoding="utf-8")
    match = re.search(
        r"cat > ~/\.ipython/profile_default/ipython_kernel_config\.py <<'PY'\n(.*?)^PY$",
        text,
        re.M | re.S,
    )
    assert match, "postBuild does not write the kernel's lazy-magic config"
    return match.group(1)


def test_binder_lazy_magic_config_is_right() -> None:
    c = SimpleNamespace(MagicsManager=SimpleNamespace(lazy_magics={}))
    exec(lazy_magic_config(), {"get_config": lambda: c})
    assert c.MagicsManager.lazy_magics == {"alloy": "alloy_nb"}


@pytest.mark.kernel
def test_binder_kernel_runs_alloy_without_load_ext(tmp_path: Path) -> None:
    """A kernel started with postBuild's profile answers ``%%alloy`` with no ``%load_ext``."""
    import nbformat
    from nbclient import NotebookClient

    profile = tmp_path / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_kernel_config.py").write_text(lazy_magic_config(), encoding="utf-8")
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("%%alloy\nWhat is 17 * 23?")],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )
    env = without_api_keys(os.environ)
    env["IPYTHONDIR"] = str(tmp_path / "ipython")
    NotebookClient(nb, kernel_name="python3", timeout=60).execute(env=env)
    shown = "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/markdown", ""))
        for o in nb.cells[0].outputs
    )
    assert "391" in shown, shown
