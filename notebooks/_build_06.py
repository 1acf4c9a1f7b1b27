"""Generate ``06_batch_over_data.ipynb`` (kept apart from ``_build.py``, which builds
01-05, so the two can change independently; it reuses that script's helpers).

Run ``python notebooks/_build_06.py`` after editing.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import nbformat
from nbformat import NotebookNode

HERE = Path(__file__).resolve().parent
NAME = "06_batch_over_data.ipynb"


def _base() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_nb_build_base", HERE / "_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def batch_over_data() -> list[NotebookNode]:
    b = _base()
    md, code = b.md, b.code
    return [
        md(
            """
            # Batch runs over data: typed answers for every row

            Classifying, extracting or summarising a whole table is a loop of model calls.
            `alloy.map` runs that loop for you: many rows at once (bounded concurrency that
            backs off when the provider says *slow down*), one failing row never stops the
            others, progress and cost as it goes, and a disk cache so a re-run only asks
            for what is missing. With `output_type=` every answer is a validated Python
            object, ready to become DataFrame columns.

            The data is a small synthetic penguins table shaped like the Palmer Penguins
            data (`data/penguins_sample.csv`).
            """
        ),
        code("%load_ext alloy_nb"),
        *b.provider_cells(magics=True),
        md("## The data"),
        code(
            """
            import pandas as pd

            penguins = pd.read_csv("data/penguins_sample.csv")
            penguins.head()
            """
        ),
        md(
            """
            ## The shape of an answer

            `output_type` takes a pydantic model (or a TypedDict, dataclass, `int`,
            `list[...]`). The model answers by calling a final tool named `final_result`
            whose arguments must match this schema; invalid answers are sent back with
            the validation error, a few times at most. `result.output` holds the
            validated object.

            With the offline demo provider the answers are **sample values** that fit
            the schema (chosen from the prompt, the same each run), not a model's
            judgement, so many species will be wrong. A real model does far better on
            this table.
            """
        ),
        code(
            """
            from typing import Literal

            from pydantic import BaseModel, Field


            class PenguinGuess(BaseModel):
                \"\"\"What the model thinks about one penguin.\"\"\"

                species: Literal["Adelie", "Chinstrap", "Gentoo"]
                size: Literal["small", "medium", "large"]
                confidence: float = Field(ge=0, le=1, description="0 = guessing, 1 = sure")


            first = penguins.iloc[0]
            r = alloy.run(
                f"A penguin from {first.island}: bill {first.bill_length_mm} mm, "
                f"body mass {first.body_mass_g} g. Which species, and what size?",
                provider=provider,
                output_type=PenguinGuess,
            )
            r.output
            """
        ),
        md(
            """
            The same from a `%%alloy` cell: `--output-type NAME` names a notebook variable
            holding the type, and `-o` keeps the Result.
            """
        ),
        code(
            """
            %%alloy --output-type PenguinGuess -o guess
            A penguin from Biscoe island with a 47 mm bill and a body mass of 5,200 g:
            which species is it, and what size?
            """
        ),
        code("guess.output"),
        md(
            """
            ## Every row at once

            The template's `{column}` fields are filled from each row. While it runs, the
            line below the cell shows done, failed, cost and time left; when it finishes it
            stays as plain text, so the saved notebook shows it anywhere.
            """
        ),
        code(
            """
            import tempfile

            cache_dir = tempfile.mkdtemp(prefix="alloy_nb_cache_")  # use a lasting folder for real work
            template = (
                "A penguin from {island} island: bill {bill_length_mm} mm long and "
                "{bill_depth_mm} mm deep, flipper {flipper_length_mm} mm, body mass "
                "{body_mass_g} g, sex {sex}. Which species is it, and what size?"
            )
            batch = alloy.map(
                template,
                penguins,
                provider=provider,
                output_type=PenguinGuess,
                concurrency=8,
                cache_dir=cache_dir,
            )
            batch
            """
        ),
        md(
            """
            `batch.outputs` lines up with the rows (None where a row failed; its exception
            is in `batch.errors`). `to_pandas()` keeps the table's index and spreads the
            model's fields into columns, so joining them back is one line.
            """
        ),
        code(
            """
            guesses = batch.to_pandas()
            table = penguins.join(guesses.add_prefix("guess_"))
            table[["species", "island", "body_mass_g", "guess_species", "guess_size",
                   "guess_confidence", "guess_status"]].head(8)
            """
        ),
        code(
            """
            correct = (table["species"] == table["guess_species"]).mean()
            print(f"{len(batch)} rows, {len(batch.errors)} failed, "
                  f"{correct:.0%} of species right; cost {batch.cost} ({batch.usage})")
            """
        ),
        md("## A picture of the result"),
        code(
            """
            import matplotlib.pyplot as plt

            fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
            pd.crosstab(table["species"], table["guess_species"]).plot.bar(
                ax=left, title="Actual species (x) vs guessed species (colour)", rot=0)
            left.set_ylabel("penguins")
            table.boxplot(column="body_mass_g", by="guess_size", ax=right)
            right.set_title("Body mass by guessed size")
            fig.suptitle("")
            plt.tight_layout()
            plt.show()
            """
        ),
        md(
            """
            ## Re-runs are cheap

            Each finished row was stored in `cache_dir` (a temporary folder here, so this
            notebook leaves nothing behind), keyed by its prompt, the model
            and the options that change the answer. Running again asks only for rows that
            are missing or failed; changing the template, the type or the model asks
            again.
            """
        ),
        code(
            """
            again = alloy.map(template, penguins, provider=provider,
                              output_type=PenguinGuess, cache_dir=cache_dir,
                              progress=False)
            print(again.statuses.count("cached"), "of", len(again), "rows came from the cache;",
                  "outputs identical:", again.outputs == batch.outputs)
            """
        ),
        md(
            """
            ## Going bigger

            - `concurrency=` bounds requests in flight; a 429 halves it and honours
              `Retry-After`, then it climbs back.
            - `max_budget_cents=` caps the whole batch: no new row starts past it (needs a
              model with a known price).
            - Interrupting the kernel (■) stops the rows in flight and keeps the finished
              ones (in `cache_dir`, and on the error's `.result`).
            - `engine="dask"` runs partitions on the workers of your current
              `dask.distributed` Client (`pip install 'alloy_nb[dask]'`).
            - `mode="batch"` sends single-turn rows through Anthropic's or OpenAI's batch
              API: about half the price, answers within hours.
            - `await alloy.amap(...)` is the async twin.
            """
        ),
    ]


def build() -> NotebookNode:
    nb: NotebookNode = _base().build(NAME, batch_over_data())
    return nb


def main() -> int:
    nb = build()
    nbformat.write(nb, HERE / NAME)
    print(f"wrote notebooks/{NAME} ({len(nb.cells)} cells)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
