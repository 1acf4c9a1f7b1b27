"""06_batch_over_data runs offline in a real kernel: typed answers for every row become
DataFrame columns, the map's progress ends as static text (no widget), the plot renders,
a re-run comes from the cache; and the saved file matches ``notebooks/_build_06.py``."""

from __future__ import annotations

import importlib.util
import json
import shutil

import nbformat
import pytest

from .test_notebooks import NOTEBOOKS, Executed, execute

NAME = "06_batch_over_data.ipynb"


@pytest.fixture(scope="module")
def nb06(tmp_path_factory: pytest.TempPathFactory) -> Executed:
    workdir = tmp_path_factory.mktemp("nb06")
    shutil.copytree(NOTEBOOKS, workdir, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__",
                                                  ".alloy-cache"))
    return execute(workdir / NAME, workdir)


@pytest.mark.kernel
def test_typed_answers_for_one_row_and_from_the_magic(nb06: Executed) -> None:
    assert "PenguinGuess(species=" in nb06.text("output_type=PenguinGuess,\n)")
    assert "PenguinGuess(species=" in nb06.text("guess.output")
    assert "final_result" in nb06.text("%%alloy --output-type PenguinGuess")


@pytest.mark.kernel
def test_map_progress_ends_as_static_text(nb06: Executed) -> None:
    cell = nb06.cell("batch = alloy.map(")
    shown = [o for o in cell.outputs if o.output_type == "display_data"]
    assert len(shown) == 1, cell.outputs
    data = shown[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" not in data
    assert data["text/plain"].startswith("alloy.map finished: 44/44 done, 0 failed")
    assert "alloy-map-progress" in data["text/html"]
    assert not [o for o in cell.outputs if o.output_type == "stream"]  # no stderr bar
    assert "44 completed" in nb06.output_text(cell)


@pytest.mark.kernel
def test_columns_plot_and_cache(nb06: Executed) -> None:
    table = nb06.text('table = penguins.join(guesses.add_prefix("guess_"))')
    assert "guess_species" in table and "completed" in table
    assert "44 rows, 0 failed" in nb06.text("correct = ")
    plot = nb06.cell("import matplotlib.pyplot as plt")
    assert any("image/png" in o.get("data", {}) for o in plot.outputs)
    assert "44 of 44 rows came from the cache; outputs identical: True" in nb06.text(
        "again = alloy.map(")


def test_notebook_matches_its_generator() -> None:
    spec = importlib.util.spec_from_file_location("_nb_build_06", NOTEBOOKS / "_build_06.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    saved = json.loads((NOTEBOOKS / NAME).read_text(encoding="utf-8"))
    assert saved == json.loads(nbformat.writes(module.build())), (
        f"{NAME} differs from notebooks/_build_06.py; run `python notebooks/_build_06.py`")

