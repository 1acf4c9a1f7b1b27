"""Generate the tutorial notebooks (the source of truth; the .ipynb files are build output).

Run ``python notebooks/_build.py`` after editing: it rewrites every notebook with no
outputs, kernelspec python3 and stable cell ids, so a rebuild only shows real changes.
The files are byte-for-byte what Jupyter itself saves (nbformat 4.5, the kernel's
``language_info``, cell ids, trailing newline), so opening one does not mark it modified.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from textwrap import dedent

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
# Exactly what ipykernel reports in kernel_info: JupyterLab writes it into the notebook when
# the kernel starts and marks the notebook modified if it differs. The Python version is the
# project's reference interpreter; on another one Jupyter updates that one field on open.
REFERENCE_PYTHON = "3.11.7"
LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
    "version": REFERENCE_PYTHON,
}


def md(text: str) -> NotebookNode:
    return new_markdown_cell(dedent(text).strip("\n"))


def code(text: str) -> NotebookNode:
    return new_code_cell(dedent(text).strip("\n"))


# ---------------------------------------------------------------------------------------
# Cells shared by every notebook: pick a provider, optionally paste a key.
# ---------------------------------------------------------------------------------------

PROVIDER_MD = md(
    """
    ## Choose a provider

    The next cell uses a real model when `ANTHROPIC_API_KEY` or `OPENAI_API_KEY` is set in the
    environment the Jupyter server was started from. Otherwise it uses the **offline demo
    provider**: its replies are scripted rules (arithmetic, calling the tools it is given,
    summarising their results), not a model, and every reply says so. Everything below works
    with either.
    """
)

PROVIDER_CELL = code(
    """
    import os

    from IPython.display import Markdown, display

    import alloy_nb as alloy
    from alloy_nb.providers import Anthropic, OpenAI
    from alloy_nb.providers.demo import DEMO_BANNER, Demo


    def pick_provider():
        \"\"\"A real provider when a key is in the environment, else the offline demo.\"\"\"
        if os.environ.get("ANTHROPIC_API_KEY"):
            return Anthropic()  # reads the key from the environment; its repr never shows it
        if os.environ.get("OPENAI_API_KEY"):
            return OpenAI()
        display(Markdown(f"> **{DEMO_BANNER}**"))
        return Demo()


    provider = pick_provider()
    provider
    """
)

KEY_MD = md(
    """
    **Optional: paste a key.** Type an Anthropic (`sk-ant-…`) or OpenAI (`sk-…`) key into the
    field below and press Enter. The field is cleared and closed at once, so the key is never
    saved in this notebook; it lives only in this kernel's memory. (Don't use `%env KEY=…`: it
    is saved with the notebook.) With no key, just carry on.
    """
)

KEY_CELL = code(
    """
    import ipywidgets as widgets

    key_field = widgets.Password(
        placeholder="API key, then Enter (optional)",
        continuous_update=False,  # the value reaches the kernel only on Enter
    )


    def use_key(change):
        global provider
        key = change["new"].strip()
        if not key:
            return
        key_field.value = ""  # clear before anything else can save the widget state
        key_field.close()
        provider = Anthropic(api_key=key) if key.startswith("sk-ant-") else OpenAI(api_key=key)
        {on_key}
        print(f"Now using {provider!r}. Re-run the cells below.")


    key_field.observe(use_key, names="value")
    key_field
    """
)


def key_cell(on_key: str = "pass  # later cells pass `provider` explicitly") -> NotebookNode:
    cell = KEY_CELL.copy()
    cell.source = KEY_CELL.source.replace("{on_key}", on_key)
    return cell


def provider_cells(magics: bool = False) -> list[NotebookNode]:
    """Provider choice; with ``magics`` the ``%%alloy`` default session uses it too."""
    cells = [PROVIDER_MD, PROVIDER_CELL, KEY_MD]
    if magics:
        cells.append(key_cell('get_ipython().run_line_magic("alloy", "provider provider")'))
        cells.append(
            code(
                """
                # %%alloy cells use the provider held in the variable `provider` from now on.
                %alloy provider provider
                """
            )
        )
    else:
        cells.append(key_cell())
    return cells


# ---------------------------------------------------------------------------------------
# 01 quickstart
# ---------------------------------------------------------------------------------------


def quickstart() -> list[NotebookNode]:
    return [
        md(
            """
            # alloy_nb quickstart

            alloy_nb is an agent harness: it sends your message to a language model, runs the
            tools the model asks for, feeds the results back, and loops until the model is
            done. In a notebook you talk to it through the `%%alloy` cell magic or from Python
            with `alloy.run`. This notebook runs top to bottom without an API key, on an
            offline demo provider, in a few seconds.
            """
        ),
        code("%load_ext alloy_nb"),
        *provider_cells(magics=True),
        md(
            """
            ## Ask a question

            The cell body is the prompt. The reply streams into the cell as it arrives; the
            footer shows tokens and cost.
            """
        ),
        code(
            """
            %%alloy
            What is 17 * 23?
            """
        ),
        md(
            """
            ## Give it a tool

            A tool is a plain Python function. `@tool` derives its schema from the type hints
            and the docstring. To use your own tools in a cell, make a `Session` with them and
            send the cell to it with `-s NAME`. (`--tools` picks built-in tools by name:
            `read`, `write`, `edit`, `bash`, `notebook`, `run_python`.) Each tool call appears
            as a card you can open.
            """
        ),
        code(
            """
            from alloy_nb.tools import tool


            @tool
            def add(a: int, b: int) -> int:
                \"\"\"Add two integers.\"\"\"
                return a + b


            calc = alloy.Session(provider=provider, tools=[add])
            add.input_schema
            """
        ),
        code(
            """
            %%alloy -s calc
            Use add to add 2 and 40.
            """
        ),
        md(
            """
            ## Keep the result: `-o`

            `-o NAME` stores the `Result` in a variable: the final `text`, the full `messages`
            history, `usage`, the `tool_calls` made, and the `status`.
            """
        ),
        code(
            """
            %%alloy -o answer
            What is 6 * 7?
            """
        ),
        code(
            """
            display(Markdown(answer.text))  # answers are Markdown: let Jupyter render them
            print(answer.status, "after", answer.turns, "turn(s)")
            print(len(answer.messages), "messages in the conversation so far")
            """
        ),
        md(
            """
            ## Continue the conversation

            The default session keeps its history, so the next cell continues where the last
            one stopped. `{name}` puts a notebook variable into the prompt.
            """
        ),
        code("bonus = 8"),
        code(
            """
            %%alloy
            Thanks. Now what is 42 + {bonus}?
            """
        ),
        code("%alloy history"),
        md(
            """
            ## The same from Python

            `alloy.run` is the one-shot API behind the magic. It returns the same `Result`,
            which renders as Markdown. Pass `messages=` to continue a conversation, and use
            `alloy.stream` to receive text as it arrives.
            """
        ),
        code(
            """
            result = alloy.run("What is 2 + 2?", provider=provider)
            result
            """
        ),
        code(
            """
            follow_up = alloy.run("And 4 * 10?", provider=provider, messages=result.messages)
            display(Markdown(follow_up.text))
            print(len(follow_up.messages), "messages in the history")
            """
        ),
        code(
            """
            import time

            # Show the Markdown as it streams: one display, updated in place at most ten
            # times a second (an update per chunk would flood the browser on long answers).
            live = display(Markdown("…"), display_id=True)
            so_far, last = [], [0.0]


            def show(chunk):
                so_far.append(chunk)
                if time.monotonic() - last[0] > 0.1:
                    live.update(Markdown("".join(so_far)))
                    last[0] = time.monotonic()


            streamed = alloy.stream("Use add on 20 and 22.", show, provider=provider, tools=[add])
            live.update(Markdown("".join(so_far)))  # the complete answer
            print([call.name for call in streamed.tool_calls])
            """
        ),
        md(
            """
            ## Run in the background and stop it

            `--background` returns at once and keeps streaming into the cell, with a **Stop**
            button, while you work in other cells. Here a second session uses a deliberately
            slow demo provider so there is time to press Stop. (With a real model the
            reply is just long.)
            """
        ),
        code(
            """
            # The demo streams slowly here (0.2 s per chunk) so there is time to press Stop.
            slow_provider = Demo(delay_s=0.2) if isinstance(provider, Demo) else provider
            slow = alloy.Session(provider=slow_provider)
            """
        ),
        code(
            """
            %%alloy -s slow --background -o job
            Write a long explanation of how an agent loop works.
            """
        ),
        md(
            """
            Press **Stop** above, or stop it from code with `%alloy cancel slow`: the next cell
            does that **on purpose**, so with Run All this one answer ends early, marked
            interrupted. `await job` waits for the `Result`; a stopped run ends with status
            `cancelled` and a history that is still valid.
            """
        ),
        code(
            """
            import asyncio

            await asyncio.sleep(1)  # it streams meanwhile: the kernel is free while we wait
            # Stop it on purpose, to show stopping from code (its answer is cut short by design).
            %alloy cancel slow
            """
        ),
        code(
            """
            stopped = await job
            print(stopped.status)
            """
        ),
        md(
            """
            ## Next

            * `02_data_assistant.ipynb`: let the agent look at a DataFrame.
            * `03_tools_and_middleware.ipynb`: your own tools, file tools, guard rails.
            * `%alloy help` lists every subcommand.
            """
        ),
    ]


# ---------------------------------------------------------------------------------------
# 02 data assistant
# ---------------------------------------------------------------------------------------


def data_assistant() -> list[NotebookNode]:
    return [
        md(
            """
            # A data assistant for your DataFrame

            The agent can look at the variables in your notebook through three tools:
            `list_variables`, `inspect_variable` (both read-only) and, only if you opt in,
            `run_python`. Here it explores a small penguins table: a synthetic sample shaped
            like the Palmer Penguins data, shipped as `data/penguins_sample.csv`. Check
            every claim it makes against pandas, as the last cells do.
            """
        ),
        code("%load_ext alloy_nb"),
        *provider_cells(magics=True),
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
            ## Ask about it

            `--tools notebook` gives the agent the read-only notebook tools. It lists the
            variables, picks the DataFrame, inspects it (shape, dtypes, missing values, a few
            rows) and answers from what it saw. Open the tool cards to see exactly what it
            was shown.
            """
        ),
        code(
            """
            %%alloy --tools notebook -o missing
            Which columns of the penguins DataFrame have missing values?
            """
        ),
        md(
            """
            `{name}` interpolation sends a *summary* of a variable (a DataFrame becomes its
            shape and first rows), never a huge `repr`.
            """
        ),
        code(
            """
            %%alloy
            Here is the table: {penguins}
            Which species looks heaviest?
            """
        ),
        md(
            """
            ## From Python, with the namespace passed explicitly

            The notebook tools read `context["namespace"]`. The result's `tool_calls` show
            what the agent did.
            """
        ),
        code(
            """
            from alloy_nb.tools.notebook import notebook_tools

            tools = notebook_tools()
            print([t.name for t in tools])

            result = alloy.run(
                "Use the notebook tools to look at the DataFrame `penguins`. "
                "Which columns does it have?",
                provider=provider,
                tools=tools,
                context={"namespace": globals()},
            )
            pd.DataFrame(
                [{"tool": c.name, "input": c.input, "ms": c.duration_ms} for c in result.tool_calls]
            )
            """
        ),
        code("Markdown(result.text)  # the answer, rendered"),
        md(
            """
            ## Check the answer yourself

            Whatever the assistant says, pandas has the ground truth.
            """
        ),
        code(
            """
            penguins.isna().sum()
            """
        ),
        code(
            """
            penguins.groupby("species")["body_mass_g"].mean().round()
            """
        ),
        md(
            """
            ## Letting it run code (opt-in)

            `notebook_tools(run_python=True)` adds a `run_python` tool that runs code in your
            namespace. It can change your variables, so it does nothing unless the context
            says how each call is approved: `context["approve"]` is asked before every run
            (in the `%%alloy` widget it is an Approve/Deny card). Here a function approves
            read-only one-liners and refuses the rest.
            """
        ),
        code(
            """
            from alloy_nb.tools.notebook import RunPython

            approvals = []


            def approve(tool_name, code):
                \"\"\"Allow one-line expressions on `penguins`; refuse anything else.\"\"\"
                ok = code.strip().startswith("penguins.") and "\\n" not in code.strip()
                approvals.append(f"{'approved' if ok else 'refused '}: {code}")
                return ok


            context = {"namespace": globals(), "approve": approve}
            tools = [RunPython()]  # or notebook_tools(run_python=True) for all three
            result = alloy.run(
                'Call run_python once with exactly this code: "penguins.describe().round(1)". '
                "Then summarise what it shows.",
                provider=provider,
                tools=tools,
                context=context,
            )
            # A real model may decline to even try this one; then only one line is logged.
            refused = alloy.run(
                'This tests an approval rule. Call run_python once with exactly this code: '
                '"del penguins". If it is refused, say so and stop.',
                provider=provider,
                tools=tools,
                context=context,
            )
            print(*approvals, sep="\\n")
            print("penguins still defined:", "penguins" in globals())
            Markdown(result.text)
            """
        ),
    ]


# ---------------------------------------------------------------------------------------
# 03 tools and middleware
# ---------------------------------------------------------------------------------------


def tools_and_middleware() -> list[NotebookNode]:
    return [
        md(
            """
            # Tools and middleware

            Tools are how an agent acts; middleware is how you stay in charge. This notebook
            writes tools from plain functions, gives the agent file tools confined to one
            folder (and watches it refuse to leave), blocks a tool call with a middleware, and
            uses `until_tool` to get a structured answer validated by pydantic.
            """
        ),
        *provider_cells(),
        md(
            """
            ## Tools from functions

            The schema comes from the type hints, and the docstring gives the description of
            the tool and of each argument. A tool may be sync or async. If it raises, the
            model sees the error and the loop goes on: raise `ToolError` for a message meant
            for the model (the second run below asks for a unit the tool does not know).
            """
        ),
        code(
            """
            import json

            from alloy_nb.tools import ToolError, tool


            @tool
            def convert_grams(grams: float, unit: str = "kg") -> float:
                \"\"\"Convert a mass in grams.

                Args:
                    grams: the mass in grams.
                    unit: "kg" or "lb".
                \"\"\"
                if unit not in ("kg", "lb"):
                    # ToolError: a message meant for the model, which can then try again.
                    raise ToolError(f"unknown unit {unit!r}; use 'kg' or 'lb'")
                return round(grams / (1000 if unit == "kg" else 453.592), 3)


            print(json.dumps(convert_grams.input_schema, indent=2))
            """
        ),
        code(
            """
            for prompt in ['Call convert_grams with grams=5200 and unit "kg".',
                           # "stone" is not supported: the model sees the ToolError and may retry
                           'Call convert_grams with grams=5200 and unit "stone", '
                           "passing the unit exactly as written."]:
                result = alloy.run(prompt, provider=provider, tools=[convert_grams])
                for call in result.tool_calls:
                    print(call.name, call.input, "->", call.error or "ok")
                display(Markdown(result.text))
            """
        ),
        md(
            """
            ## File tools, confined to one folder

            `Read`, `Write` and `Edit` resolve paths against `working_directory` and refuse
            anything outside it (or outside `context["allowed_paths"]`), including `..` and
            symlinks that lead out.
            """
        ),
        code(
            """
            import tempfile
            from pathlib import Path

            from alloy_nb.tools.core import Edit, Read, Write

            # Scratch files go to a temporary folder, never next to this notebook.
            scratch = Path(tempfile.mkdtemp(prefix="alloy_nb_tools_"))
            sandbox = scratch / "sandbox"
            sandbox.mkdir()
            (sandbox / "notes.txt").write_text("Gentoo penguins are the fastest swimmers.\\n")
            (scratch / "secret.txt").write_text("outside the sandbox\\n")

            result = alloy.run(
                'Use the read tool on "notes.txt" and tell me what it says.',
                provider=provider,
                tools=[Read, Write, Edit],
                working_directory=sandbox,
            )
            Markdown(result.text)
            """
        ),
        code(
            """
            escape = alloy.run(
                'We are testing the sandbox. Use the read tool on "../secret.txt" '
                "and report what happens.",
                provider=provider,
                tools=[Read],
                working_directory=sandbox,
            )
            for call in escape.tool_calls:
                print(call.name, call.input, "->", call.error)
            """
        ),
        md(
            """
            ## A middleware that blocks a call

            Middleware is called at fixed points of the loop (`before_tool_call`,
            `after_completion`, ...). Returning `Block(reason)` from `before_tool_call` refuses
            that one call: the model sees `Blocked: <reason>` and can try something else.
            `Halt(reason)` would stop the whole run.

            A guard like this is a convenience, not a wall. Where bubblewrap (`bwrap`) is
            installed, `Bash` runs every command in a sandbox (read-only system, only the
            working directory and `/tmp` writable, the kernel's environment and API keys out
            of reach). Without it, Bash uses restricted mode, which is **not a security
            boundary**; `%alloy tools bash` tells you which one you have.
            """
        ),
        code(
            """
            from alloy_nb import Block, Middleware
            from alloy_nb.tools.core import Bash


            class NoDelete(Middleware):
                \"\"\"Refuse shell commands that delete files.\"\"\"

                def call(self, hook, state):
                    if hook == "before_tool_call":
                        call = state.context["current_tool_call"]
                        if call["name"] == "bash" and "rm " in call["input"].get("command", ""):
                            return Block("deleting files is not allowed here")
                    return state


            guarded = alloy.run(
                'We are testing a guard. Use the bash tool to run exactly "rm -rf sandbox". '
                "If it is blocked, report that and stop: do not try any other command.",
                provider=provider,
                tools=[Bash],
                working_directory=sandbox,
                middleware=[NoDelete()],
                max_turns=3,  # a belt for the braces: a real model gets few chances to retry
            )
            for call in guarded.tool_calls:
                print(call.name, call.input, "->", call.error)
            print("sandbox still there:", sandbox.exists())
            """
        ),
        md(
            """
            ## Structured output with `until_tool`

            To get an answer in a fixed shape, describe the shape as a tool and name it in
            `until_tool`: the loop does not finish until the model has called it, and the
            call's input is your structured answer. Here the shape is a pydantic model, and the
            tool validates it, so a malformed answer goes back to the model as an error.
            """
        ),
        code(
            """
            from pydantic import BaseModel, Field

            from alloy_nb.tools import Tool


            class Penguin(BaseModel):
                species: str
                island: str
                body_mass_g: int = Field(gt=0)


            class RecordPenguin(Tool):
                name = "record_penguin"
                description = "Record one penguin. Call it once with your final answer."
                input_schema = Penguin.model_json_schema()

                def execute(self, input, context):
                    Penguin.model_validate(input)  # raises on a bad answer; the model sees why
                    return "recorded"


            result = alloy.run(
                'Use record_penguin for this bird: species "Gentoo", island "Biscoe", '
                "body mass 5200 g.",
                provider=provider,
                tools=[RecordPenguin],
                until_tool="record_penguin",
            )
            # The last accepted call is the answer (a rejected one went back to the model).
            answer = [c for c in result.tool_calls if c.name == "record_penguin" and not c.error]
            penguin = Penguin.model_validate(answer[-1].input)
            penguin
            """
        ),
        md(
            """
            What if the model answers in prose and forgets the tool? The loop does not stop:
            it asks again. A `Scripted` provider (exact replies, the way the tests drive the
            loop) shows it: the first reply is prose, the loop nudges, the second reply calls
            the tool.
            """
        ),
        code(
            """
            from alloy_nb.providers import Scripted

            gentoo = {"species": "Gentoo", "island": "Biscoe", "body_mass_g": 5200}
            script = Scripted([
                "It is probably a Gentoo from Biscoe, about 5.2 kg.",
                Scripted.tool_calls(("record_penguin", gentoo)),
                "Recorded.",
            ])
            nudged = alloy.run(
                "Record this penguin: a Gentoo from Biscoe, 5200 g.",
                provider=script,
                tools=[RecordPenguin],
                until_tool="record_penguin",
            )
            for message in nudged.messages:
                shown = message.text[:70] or [block.type for block in message.content]
                print(f"{message.role:>9}: {shown}")
            Penguin.model_validate(nudged.tool_calls[-1].input)
            """
        ),
    ]


# ---------------------------------------------------------------------------------------
# 04 sessions and background runs
# ---------------------------------------------------------------------------------------


def sessions() -> list[NotebookNode]:
    return [
        md(
            """
            # Sessions, background runs and cost

            A `Session` is a long-lived agent: it keeps the conversation, its tools and its
            settings, and can run requests in the background while you keep working. Display
            one and you get a chat box. This notebook also shows how to stop a run and how to
            read the token usage and cost.
            """
        ),
        code("%load_ext alloy_nb"),
        *provider_cells(),
        md("## A session and its chat widget"),
        code(
            """
            from alloy_nb.tools import tool


            @tool
            def add(a: int, b: int) -> int:
                \"\"\"Add two integers.\"\"\"
                return a + b


            session = alloy.Session(
                provider=provider,
                tools=[add],
                system_prompt="You are a patient maths tutor.",
                max_pending=2,
            )
            session  # a chat box: type below it and press Enter
            """
        ),
        md(
            """
            The same session from code: `chat` blocks until the reply is complete and keeps the
            history for the next call.
            """
        ),
        code(
            """
            r1 = session.chat("Hello! Can you help me with sums?")
            r2 = session.chat("Use add to add 144 and 6.")
            display(Markdown(r1.text), Markdown(r2.text))
            print(len(session.messages), "messages;", [c.name for c in r2.tool_calls])
            """
        ),
        md(
            """
            ## Background requests, and stopping one

            `send_message` returns a request id at once; the run goes on in the background
            (in a notebook it advances while the kernel is idle or awaiting). `subscribe`
            gets every event and, at the end, a `result` event. `cancel_request` stops a
            run; its history stays valid. A slow session gives us time to stop it.
            """
        ),
        code(
            """
            import asyncio

            # The demo streams slowly here (0.2 s per chunk) so there is time to stop it.
            slow_provider = Demo(delay_s=0.2) if isinstance(provider, Demo) else provider
            slow = alloy.Session(provider=slow_provider)
            seen = []
            slow.subscribe(seen.append)

            request_id = slow.send_message("Write a long essay about penguins.", streaming=True)
            print("sent", request_id)
            await asyncio.sleep(1)
            # Stop it on purpose, to show cancel_request (its answer is cut short by design).
            print("cancelled:", slow.cancel_request(request_id))
            """
        ),
        code(
            """
            # `await session.result(id)` waits for a background request's Result.
            stopped = await slow.result(request_id)
            print("status:", stopped.status)
            print("events received:", sorted({ev.event for ev in seen}))
            print("history after the stop:", [m.role for m in slow.messages])
            """
        ),
        md(
            """
            ## `%%alloy --background` with a Stop button

            The magic form shows the reply streaming in, with a **Stop** button; the
            notebook stays usable meanwhile. `await` the handle for the `Result`.
            """
        ),
        code(
            """
            %%alloy -s slow --background -o job
            Tell me a long story about an Adelie penguin.
            """
        ),
        code(
            """
            await asyncio.sleep(0.5)
            # Stop it on purpose, to show stopping from code (its answer is cut short by design).
            %alloy cancel slow
            story = await job
            print(story.status)
            """
        ),
        md(
            """
            ## Usage and cost

            Every result and session carries token counts. `session.usage` is the running
            total (a result from a session carries it too) and `result.run_usage` one
            request's share. The cost is estimated from known model prices (a model with no
            known price says "unpriced" rather than pretending); the offline demo runs
            locally and costs nothing. `%alloy usage` tabulates every request made in this
            kernel, per session, provider and model: `%%alloy` cells, `session.chat()` and
            `send_message` from Python, the chat box, and the stopped runs too.
            """
        ),
        code(
            """
            print("session:", session.usage)  # the running total
            print("last reply:", r2.run_usage)  # this request's share
            """
        ),
        code("%alloy usage"),
        md(
            """
            What would this conversation cost on a real model? `Usage.with_cost` prices the
            same token counts (US dollars per million tokens in and out). A
            `max_budget_cents=` option stops a run once its cost passes a limit.
            """
        ),
        code(
            """
            priced = session.usage.with_cost(input_per_million=3.0, output_per_million=15.0)
            print(priced.cost_label, "at $3 / $15 per million tokens")
            """
        ),
    ]


# ---------------------------------------------------------------------------------------
# 05 teaching the loop
# ---------------------------------------------------------------------------------------


def teaching() -> list[NotebookNode]:
    return [
        md(
            """
            # How an agent loop works, one step at a time

            For a class. An "agent" is a loop: the model gets the conversation and the list of
            tools; it either answers, or asks for a tool call; the harness runs the tool and
            adds the result to the conversation; then it asks the model again. Here we watch
            every step of that loop through the events alloy_nb emits, and then read the
            conversation it built, message by message.
            """
        ),
        *provider_cells(),
        md(
            """
            ## Step 1: a tool

            The harness can run this function; the model can only *ask* for it to be run. The
            prompt below tells the model to use it (a real model could also just do the sum in
            its head, and then the loop would have nothing to show).
            """
        ),
        code(
            """
            from alloy_nb.tools import tool


            @tool
            def multiply(a: int, b: int) -> int:
                \"\"\"Multiply two integers.\"\"\"
                return a * b
            """
        ),
        md(
            """
            ## Step 2: run the loop and record every event

            `on_event` receives each event as it happens: `turn_start`, `text_delta` (a piece
            of text), `tool_start`, `tool_end`, `usage`, `turn_end`, `done`...
            """
        ),
        code(
            """
            events = []
            result = alloy.stream(
                "Use the multiply tool to compute 12 times 34, then tell me the result.",
                lambda chunk: None,  # the text arrives in deltas; we read it from the events
                provider=provider,
                tools=[multiply],
                on_event=events.append,
            )
            print(len(events), "events;", result.turns, "turns; status", result.status)
            """
        ),
        md(
            """
            ## Step 3: the timeline

            Consecutive text deltas are joined so the timeline stays readable. Find the two
            turns: in turn 1 the model asks for `multiply`, the harness runs it; in turn 2 the
            model reads the result and answers.
            """
        ),
        code(
            """
            from itertools import groupby


            def explain(ev):
                \"\"\"One line saying what an event means.\"\"\"
                p = ev.payload if isinstance(ev.payload, dict) else {}
                if ev.event == "turn_start":
                    return f"the harness calls the model ({p.get('model')})"
                if ev.event == "turn_end":
                    return f"the model stops: {p.get('stop_reason')}"
                if ev.event == "tool_start":
                    return f"the harness runs {p.get('name')}({p.get('input')})"
                if ev.event == "tool_end":
                    outcome = f"error {p['error']}" if p.get("error") else repr(p.get("result"))
                    return f"{p.get('name')} returns {outcome} in {p.get('duration_ms')} ms"
                if ev.event == "usage":
                    u = p.get("usage", {})
                    return f"{u.get('input_tokens')} tokens in, {u.get('output_tokens')} out"
                if ev.event == "done":
                    return f"status {p.get('status')} after {p.get('turns')} turn(s)"
                return ""


            def timeline(events):
                # Consecutive text deltas are joined into one line.
                for kind, group in groupby(events, key=lambda ev: ev.event):
                    group = list(group)
                    if kind == "text_delta":
                        first, text = group[0], "".join(str(ev.payload) for ev in group)
                        label = f"text x{len(group)}"
                        print(f"{first.seq:>4}  turn {first.turn}  {label:<11} {text[:60]!r}")
                    else:
                        for ev in group:
                            print(f"{ev.seq:>4}  turn {ev.turn}  {ev.event:<11} {explain(ev)}")


            timeline(events)
            """
        ),
        md(
            """
            ## Step 4: the conversation the loop built

            `result.messages` is the full history: your message, the model's tool request,
            the tool result (sent back to the model as a *user* message), and the final answer.
            This is exactly what would be sent to the model on the next turn.
            """
        ),
        code(
            """
            import pandas as pd


            def show(block):
                if block.type == "text":
                    return block.text
                if block.type == "tool_use":
                    return f"call {block.name}({block.input}) id={block.id}"
                if block.type == "tool_result":
                    return f"result for {block.tool_use_id}: {block.content}"
                return block.type


            rows = [
                {"#": i, "role": m.role, "block": b.type, "content": show(b)[:80]}
                for i, m in enumerate(result.messages)
                for b in m.content
            ]
            pd.DataFrame(rows).set_index("#")
            """
        ),
        code(
            """
            Markdown(result.text)  # the final answer, rendered as Markdown
            """
        ),
        md(
            """
            ## Step 5: the model is just a function of the conversation

            A `Scripted` provider replaces the model with a fixed list of replies. The loop
            around it is the same, so the timeline has the same shape. Try it: change the
            script so the model calls `multiply` twice, or never.
            """
        ),
        code(
            """
            from alloy_nb.providers import Scripted

            script = Scripted([
                Scripted.tool_calls(("multiply", {"a": 6, "b": 7})),
                "6 times 7 is 42.",
            ])
            scripted_events = []
            scripted = alloy.run(
                "What is 6 times 7?",
                provider=script,
                tools=[multiply],
                on_event=scripted_events.append,
            )
            timeline(scripted_events)
            Markdown(scripted.text)
            """
        ),
        md(
            """
            ## Questions for the class

            1. How many times was the model called for one question? (Count the `turn_start`
               events.)
            2. Which message carries the tool result, and what is its role? Why?
            3. What would stop a model that keeps calling tools forever? (Look up `max_turns`.)
            """
        ),
    ]


NOTEBOOKS = {
    "01_quickstart.ipynb": quickstart,
    "02_data_assistant.ipynb": data_assistant,
    "03_tools_and_middleware.ipynb": tools_and_middleware,
    "04_sessions_and_background.ipynb": sessions,
    "05_teaching_the_loop.ipynb": teaching,
}


def build(name: str, cells: list[NotebookNode]) -> NotebookNode:
    nb = new_notebook(cells=cells)
    nb.metadata = {
        "kernelspec": dict(KERNELSPEC),
        "language_info": json.loads(json.dumps(LANGUAGE_INFO)),  # a deep copy
    }
    stem = name.split("_", 1)[0]
    for i, cell in enumerate(nb.cells):
        cell.id = f"nb{stem}-{i:02d}"  # stable ids: a rebuild only diffs real changes
    nbformat.validate(nb)
    return nb


def main(argv: list[str]) -> int:
    names = argv or list(NOTEBOOKS)
    for name in names:
        nb = build(name, [c.copy() for c in NOTEBOOKS[name]()])
        nbformat.write(nb, HERE / name)
        print(f"wrote notebooks/{name} ({len(nb.cells)} cells)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
