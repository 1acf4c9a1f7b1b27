"""``%alloy`` (configure, inspect) and ``%%alloy`` (ask): parse arguments, then delegate.

Behaviour lives in ``_control.NotebookAgents``; this module only turns command lines into
calls and bad input into ``UsageError``. The docstring of ``alloy`` is ``%alloy?``.
"""

from __future__ import annotations

import keyword
import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, magics_class, no_var_expand

from alloy_nb.jupyter import DEFAULT, TOOL_NAMES, ControlError
from alloy_nb.jupyter import display as _display
from alloy_nb.jupyter._ipython import (
    argument,
    line_cell_magic,
    magic_arguments,
    parse_argstring,
)
from alloy_nb.jupyter._prompt import PromptError, interpolate

__all__ = ["AlloyMagics"]

_HELP = f"""\
%alloy provider [SPEC|VAR]    anthropic:MODEL, openai:MODEL, ollama:MODEL, demo, or a
                              variable holding a provider (keys come from the environment);
                              gemini:MODEL is Google's native API (GEMINI_API_KEY)
%alloy model [NAME]           switch model within the provider (or PREFIX:MODEL)
%alloy tools [LIST|none]      comma list of: {", ".join(TOOL_NAMES)}
%alloy system [TEXT|none]     system prompt for the sessions
%alloy approve [ask|always|never]   what run_python does before running code
%alloy reset [SESSION]        forget the conversation (usage totals stay)
%alloy usage [SESSION]        tokens and cost of every request in this kernel, per
                              session/provider/model, and the total
%alloy history [SESSION]      the conversation so far
%alloy sessions               sessions, their model, size, status and cost
%alloy cancel [SESSION|all]   stop background runs (also: %alloy stop)
%alloy save FILE [SESSION]    save a session as JSON (no keys)
%alloy export FILE [SESSION]  write the conversation as Markdown
%alloy display [auto|widget|plain]  how runs are drawn
%alloy help                   this text

%%alloy [-s SESSION] [-o VAR] [--model M] [--tools LIST] [--max-turns N] [--system TEXT]
        [--no-stream] [--background] [--no-interp]
<prompt; {{name}} inserts a notebook variable, {{{{ and }}}} are literal braces>
"""


@magics_class
class AlloyMagics(Magics):
    """The ``%alloy`` / ``%%alloy`` magics bound to one shell's ``NotebookAgents``."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self._controller: Any = None

    @property
    def controller(self) -> Any:
        """The shell's ``NotebookAgents``, built (and the core imported) on first use."""
        if self._controller is None:
            from alloy_nb.jupyter._control import NotebookAgents

            self._controller = NotebookAgents(self.shell)
        return self._controller

    @property
    def has_controller(self) -> bool:
        return self._controller is not None

    def after_cell(self, *_args: Any) -> None:
        """``post_run_cell`` hook: lets the controller (if any) refresh its views."""
        if self._controller is not None:
            self._controller.after_cell()

    @property
    def user_ns(self) -> dict[str, Any]:
        """The notebook namespace (``Magics.shell`` is typed optional; ours never is)."""
        if self.shell is None:
            raise RuntimeError("the alloy magics are not bound to a shell")
        ns: dict[str, Any] = self.shell.user_ns
        return ns

    @magic_arguments()
    @argument("-s", "--session", default=None,
              help="session name (default: 'default'); a Session variable of that name works")
    @argument("-o", "--output", default=None, metavar="VAR",
              help="store the Result in VAR (with --background: the run's handle; "
                   "`await VAR` gives the Result)")
    @argument("--model", default=None, help="model for this cell only (NAME or PREFIX:MODEL)")
    @argument("--tools", default=None, help=f"tools for this cell only: {','.join(TOOL_NAMES)}")
    @argument("--max-turns", type=int, default=None, help="turn limit for this cell")
    @argument("--system", default=None, help="system prompt for this cell only")
    @argument("--no-stream", action="store_true", help="wait for the whole answer")
    @argument("--background", "--bg", action="store_true",
              help="return at once; the answer streams here with a Stop button")
    @argument("--no-interp", action="store_true", help="send the body as written")
    @argument("--output-type", default=None, metavar="NAME",
              help="a notebook variable holding a type (pydantic model, TypedDict, "
                   "dataclass, list[...]); the Result's .output is a validated value of it")
    @no_var_expand
    @line_cell_magic
    def alloy(self, line: str, cell: str | None = None) -> Any:
        """Talk to an LLM agent from the notebook.

        As a cell magic the body is the prompt, sent to a session that keeps the
        conversation; the answer streams into the cell (Markdown, tool cards, a footer with
        tokens and cost). Interrupt the kernel (■) to stop a blocking run: the partial
        answer is kept and the conversation stays valid. ``--background`` returns at once
        and shows a Stop button. ``{name}``, ``{name.attr}``, ``{name[0]}`` insert notebook
        variables (a missing name is an error); ``{{``/``}}`` are literal braces; fenced
        code blocks are sent untouched.

        ``run_python`` (opt-in: ``%alloy tools run_python``) asks before running code: a
        y/N prompt on the kernel's stdin in a blocking cell (buttons cannot be clicked
        while a cell runs), Approve / Deny buttons with ``--background``; front ends
        without stdin (nbclient) get a refusal. ``%alloy approve always|never`` skips it.

        As a line magic it configures and inspects (``%alloy help`` lists the commands).
        With no provider configured and no ANTHROPIC_API_KEY / OPENAI_API_KEY, an offline
        demo provider answers, and says so.
        """
        try:
            if cell is None:
                return self._line(line)
            return self._cell(line, cell)
        except (ControlError, PromptError) as exc:
            raise UsageError(str(exc)) from None

    # ---- %%alloy ----------------------------------------------------------------------

    def _cell(self, line: str, cell: str) -> Any:
        try:
            args = parse_argstring(self.alloy, line)
        except ValueError as exc:  # shlex: "No closing quotation" and friends
            raise UsageError(f"%%alloy: cannot parse the options line ({exc})") from None
        if args.output is not None and (
            not args.output.isidentifier() or keyword.iskeyword(args.output)
        ):
            raise UsageError(f"-o {args.output!r}: the name must be a valid Python identifier "
                             "(and not a keyword)")
        if not cell.strip():
            raise UsageError("%%alloy: the cell body is the prompt, and it is empty")
        if args.max_turns is not None and args.max_turns < 1:
            raise UsageError("--max-turns must be at least 1")
        prompt = cell if args.no_interp else interpolate(cell, self.user_ns)
        extra: dict[str, Any] = {}
        if args.output_type is not None:
            extra["output_type"] = self._output_type(_unquote(args.output_type) or "")
        out = self.controller.ask(
            prompt.strip(), name=_unquote(args.session), background=args.background,
            stream=not args.no_stream, model=_unquote(args.model), tools=_unquote(args.tools),
            max_turns=args.max_turns, system=_unquote(args.system),
            output=None if args.background else args.output, **extra,
        )
        if args.background:
            if args.output:
                self.user_ns[args.output] = out
                return None
            # A live view already shows the run and its final state; as the cell's Out the
            # handle's repr would stay "running" for good. Only a terminal gets it back.
            return out if _display.frontend(self.shell) == "plain" else None
        return None

    def _output_type(self, name: str) -> Any:
        """``--output-type NAME``: the type held by notebook variable NAME."""
        if name not in self.user_ns:
            raise UsageError(f"--output-type {name}: no notebook variable named {name!r}; "
                             "define the type (e.g. a pydantic model) in a cell first")
        from alloy_nb.errors import ConfigError
        from alloy_nb.output import output_spec

        value = self.user_ns[name]
        try:
            output_spec(value)
        except ConfigError as exc:
            raise UsageError(f"--output-type {name}: {exc}") from None
        return value

    # ---- %alloy -----------------------------------------------------------------------

    def _line(self, line: str) -> Any:
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%alloy: {exc}") from None
        if not words:
            return print(_HELP)
        command, rest = words[0].lower(), words[1:]
        handler = getattr(self, f"_cmd_{command}", None)
        if handler is None:
            raise UsageError(f"%alloy: unknown command {command!r}; try %alloy help")
        text = line.split(None, 1)[1].strip() if len(words) > 1 else ""
        return handler(rest, text)

    def _one(self, rest: list[str], what: str) -> str | None:
        if len(rest) > 1:
            raise UsageError(f"%alloy {what} takes at most one argument")
        return rest[0] if rest else None

    def _cmd_help(self, rest: list[str], text: str) -> None:
        print(_HELP)

    def _cmd_provider(self, rest: list[str], text: str) -> None:
        c = self.controller
        spec = self._one(rest, "provider")
        if spec is None:
            print(f"provider: {c.default_provider_spec()}")
            return
        value = self.user_ns.get(spec)
        if value is not None and spec.isidentifier() and hasattr(value, "complete"):
            print(f"provider: {c.set_provider(value)} (from variable {spec})")
        else:
            print(f"provider: {c.set_provider(spec)}")

    def _cmd_model(self, rest: list[str], text: str) -> None:
        model = self._one(rest, "model")
        if model is None:
            print(f"model: {self.controller.session().model}")
            return
        print(f"provider: {self.controller.set_model(model)}")

    def _cmd_tools(self, rest: list[str], text: str) -> None:
        if not text:
            print(f"tools: {', '.join(self.controller.tool_names) or 'none'}")
            return
        names = self.controller.set_tools(text)
        print(f"tools: {', '.join(names) or 'none'}")
        if "bash" in names:
            from alloy_nb.tools.core.bash import sandbox_note

            print(sandbox_note())

    def _cmd_system(self, rest: list[str], text: str) -> None:
        if not text:
            print(f"system prompt: {self.controller.system or '(none)'}")
            return
        self.controller.set_system(None if text.lower() in ("none", "off") else text)

    def _cmd_approve(self, rest: list[str], text: str) -> None:
        policy = self._one(rest, "approve")
        if policy is not None:
            self.controller.set_policy(policy.lower())
        print(f"run_python approval: {self.controller.policy}")

    def _cmd_display(self, rest: list[str], text: str) -> None:
        mode = self._one(rest, "display") or "auto"
        try:
            _display.set_frontend(mode.lower())
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        print(f"display: {_display.frontend(self.shell)}")

    def _cmd_reset(self, rest: list[str], text: str) -> None:
        self.controller.reset(self._one(rest, "reset"))

    def _cmd_usage(self, rest: list[str], text: str) -> None:
        table = self.controller.usage_report(self._one(rest, "usage"))
        if _display.frontend(self.shell) == "plain":
            print(table.text())
            return
        from alloy_nb.jupyter._ipython import display

        display(table._repr_mimebundle_(), raw=True)

    def _cmd_history(self, rest: list[str], text: str) -> None:
        print(self.controller.history_text(self._one(rest, "history")))

    def _cmd_sessions(self, rest: list[str], text: str) -> None:
        print(self.controller.sessions_report())

    def _cmd_cancel(self, rest: list[str], text: str) -> None:
        stopped = self.controller.cancel(self._one(rest, "cancel"))
        print(f"stopped: {', '.join(stopped)}" if stopped else "no background run to stop")

    _cmd_stop = _cmd_cancel

    def _cmd_save(self, rest: list[str], text: str) -> None:
        path, name = self._file_args(rest, "save")
        print(f"saved to {self.controller.session(name).save(path)}")

    def _cmd_export(self, rest: list[str], text: str) -> None:
        path, name = self._file_args(rest, "export")
        self.controller.session(name).export_markdown(path)
        print(f"exported to {path}")

    def _file_args(self, rest: list[str], what: str) -> tuple[str, str]:
        if not rest or len(rest) > 2:
            raise UsageError(f"usage: %alloy {what} FILE [SESSION]")
        return rest[0], rest[1] if len(rest) > 1 else DEFAULT


def _unquote(value: str | None) -> str | None:
    """IPython's argument splitting keeps quotes (``--system "Be terse."``); drop them."""
    if value and len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value
