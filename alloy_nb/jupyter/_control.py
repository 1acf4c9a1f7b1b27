"""The notebook's agents: named sessions, the default provider/tools/system prompt,
background runs and the usage report. ``magics.py`` parses and calls this; so can code.

One ``NotebookAgents`` per shell (``alloy_nb.jupyter.controller()``). It builds sessions from
the public API only and hands runs to ``runner.py`` with a view from ``display.py``; the
tool-list syntax is ``_tool_specs``'s, the "is this an API key?" check ``_keys``'s.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from typing import Any

from alloy_nb.errors import AgentError, CellError  # CellError: re-exported from its old home
from alloy_nb.events import new_id
from alloy_nb.jupyter import DEFAULT, TOOL_NAMES, ControlError, runner
from alloy_nb.jupyter import display as _display
from alloy_nb.jupyter._keys import looks_like_key
from alloy_nb.jupyter._tool_specs import build_tools, parse_tools
from alloy_nb.jupyter.approval import POLICIES, Approver
from alloy_nb.jupyter.display import make_view
from alloy_nb.jupyter.render import Transcript
from alloy_nb.result import Result

__all__ = ["DEFAULT", "TOOL_NAMES", "ControlError", "NotebookAgents"]

_ENV_PROVIDERS = (("ANTHROPIC_API_KEY", "anthropic:claude-sonnet-4-6"),
                  ("OPENAI_API_KEY", "openai:gpt-5.4"))


class NotebookAgents:
    """Sessions by name plus the defaults new sessions get; see ``%alloy help``."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.sessions: dict[str, Any] = {}
        self.managed: set[str] = set()  # sessions this controller built (and may rebuild)
        self.approvers: dict[str, Approver] = {}
        self.runs: dict[str, tuple[runner.BackgroundRun, str | None]] = {}
        self.views: dict[str, Any] = {}  # the latest view per session (``.text`` for CI)
        self.chats: list[Any] = []  # shown chat views, refreshed after every cell
        self.provider_spec: Any = None
        self.tool_names: list[str] = []
        self.system: str | None = None
        self.policy = "ask"
        self.banner_shown = False  # the demo banner is shown once per kernel

    # ---- defaults ---------------------------------------------------------------------

    def default_provider_spec(self) -> Any:
        """``%alloy provider`` if set, else from the environment, else the offline demo."""
        if self.provider_spec is not None:
            return self.provider_spec
        for var, spec in _ENV_PROVIDERS:
            if os.environ.get(var):
                return spec
        return "demo"

    def set_provider(self, spec: Any, *, command: str | None = None) -> str:
        """Use ``spec`` (``"anthropic:MODEL"``, ``"demo"``, a Provider) from now on;
        ``command`` is how the person asked (for errors)."""
        if isinstance(spec, str) and looks_like_key(spec):
            raise ControlError(
                "that looks like an API key: never put keys in a notebook (they are saved "
                "with it). Set ANTHROPIC_API_KEY / OPENAI_API_KEY in the environment instead.")
        provider = _resolve(spec)
        _require_key(provider, command or f"%alloy provider {_spec_text(spec, provider)}")
        self._all_idle("switch the provider")
        self.provider_spec = spec
        for name in self.managed:
            self.sessions[name].set_model(provider if not isinstance(spec, str) else spec)
        if getattr(provider, "name", "") == "demo":  # said here, so not again in a cell
            self.banner_shown = True
            return f"{_provider_label(provider)} (offline demo: scripted replies, not a model)"
        return _provider_label(provider)

    def set_model(self, model: str) -> str:
        """Switch model within the current provider (``PREFIX:MODEL`` switches both)."""
        return self.set_provider(self._model_spec(model), command=f"%alloy model {model}")

    def _model_spec(self, model: str) -> str:
        if ":" in model or model == "demo":
            return model
        current = _resolve(self.default_provider_spec())
        prefix = getattr(current, "name", "")
        if prefix in ("demo", "scripted", "provider", ""):
            raise ControlError(f"the {prefix or 'current'} provider has no models to choose "
                               f"from; give one as PREFIX:MODEL, e.g. anthropic:{model}")
        return f"{prefix}:{model}"

    def set_tools(self, spec: str) -> list[str]:
        """``read,write,edit,bash,notebook,run_python`` (or ``none``) for every session."""
        names = parse_tools(spec)
        tools = build_tools(names)
        self._all_idle("change the tools")
        for name in self.managed:
            self.sessions[name].configure(tools=tools)
        self.tool_names = names
        return names

    def set_system(self, text: str | None) -> None:
        self._all_idle("change the system prompt")
        self.system = text or None
        for name in self.managed:
            self.sessions[name].configure(system_prompt=self.system)

    def set_policy(self, policy: str) -> None:
        if policy not in POLICIES:
            raise ControlError(f"approve policy must be one of {', '.join(POLICIES)}")
        self.policy = policy
        for approver in self.approvers.values():
            approver.policy = policy

    # ---- sessions ---------------------------------------------------------------------

    def session(self, name: str | None = None) -> Any:
        """The named session: registered, a ``Session`` variable of that name, or new."""
        name = name or DEFAULT
        from alloy_nb.session import Session

        value = self.shell.user_ns.get(name)
        if isinstance(value, Session):  # a notebook variable wins, also when rebound
            if self.sessions.get(name) is not value:
                self.sessions[name] = value
                self.managed.discard(name)
                self._adopt(name, value)
            return value
        if name in self.sessions:
            return self.sessions[name]
        if not name.isidentifier():
            raise ControlError(f"session names are identifiers; {name!r} is not")
        approver = self.approvers[name] = Approver(self.policy)
        session = Session(
            name=name, provider=_resolve(self.default_provider_spec()),
            tools=build_tools(self.tool_names), system_prompt=self.system,
            context={"namespace": self.shell.user_ns, "approve": approver},
        )
        self.sessions[name] = session
        self.managed.add(name)
        return session

    def reset(self, name: str | None = None) -> None:
        self._idle(name or DEFAULT)
        _require_idle(self.session(name), name or DEFAULT, "reset")
        self.session(name).reset()

    def _all_idle(self, what: str) -> None:
        for name in self.managed:
            _require_idle(self.sessions[name], name, what)

    def banner(self, session: Any) -> str | None:
        """The demo banner for the first run (or chat box) on the offline demo provider in
        this kernel; later runs say it only in their reply's closing note."""
        if self.banner_shown or getattr(session.config.provider, "name", "") != "demo":
            return None
        from alloy_nb.providers.demo import DEMO_BANNER

        self.banner_shown = True
        return DEMO_BANNER

    # ---- running ----------------------------------------------------------------------

    def ask(self, prompt: str, *, name: str | None = None, background: bool = False,
            stream: bool = True, model: str | None = None, tools: str | None = None,
            max_turns: int | None = None, system: str | None = None,
            output: str | None = None, output_type: Any = None,
            view_factory: Callable[..., Any] | None = None) -> Result | runner.BackgroundRun:
        """Run ``prompt`` in a session and show it in this cell; see ``%%alloy?``."""
        name = name or DEFAULT
        session = self.session(name)
        cell_id = _cell_id(self.shell)
        self._idle(name, cell_id if background else None)
        if not background and session.current_request_id is not None:
            # waiting here would block the very loop the other request may run on
            raise ControlError(f"session {name!r} is busy with another request; wait for it, "
                               f"or stop it with `%alloy cancel {name}`")
        overrides: dict[str, Any] = {  # this request only: the session is left alone
            "tools": build_tools(parse_tools(tools)) if tools is not None else None,
            "max_turns": max_turns, "system_prompt": system, "output_type": output_type,
        }
        spec = self._model_spec(model) if model else None
        overrides["provider"] = spec
        if spec is not None:  # fail now, in the cell, not inside the run
            _require_key(_resolve(spec), f"%%alloy --model {model}")
        else:
            _require_key(session.config.provider, "%%alloy")
        rid = new_id(16)
        holder: list[runner.BackgroundRun] = []
        view = (view_factory or partial(make_view, shell=self.shell))(
            Transcript(model=session.model, prompt=prompt, base=session.usage),
            banner=self.banner(session),
            on_stop=(lambda: holder[0].cancel()) if background else None,
        )
        self.views[name] = view
        approver = self.approvers.get(name)
        if approver is not None:
            approver.mode, approver.view = ("background" if background else "blocking"), view

        async def factory(on_event: Any) -> Result:
            result: Result
            if stream:
                result = await session.astream_chat(prompt, None, request_id=rid,
                                                    on_event=on_event, **overrides)
            else:
                result = await session.achat(prompt, request_id=rid, on_event=on_event,
                                             **overrides)
            return result

        def cancel() -> bool:
            return bool(session.cancel_request(rid))

        cell = getattr(self.shell, "execution_count", None)
        if background:
            def done(run: runner.BackgroundRun) -> None:
                result = run.outcome()
                if result is not None:
                    self._record(cell, name, session, result, output)
                self.refresh_chats()

            handle = runner.start_background(factory, view, name, cancel=cancel, on_done=done)
            holder.append(handle)
            self.runs[name] = (handle, cell_id)
            return handle
        try:
            result = runner.run_blocking(factory, view, cancel)
        except AgentError as exc:
            self._record(cell, name, session, exc.result, output)
            raise CellError(exc.result) from None
        except KeyboardInterrupt:
            last = session.last_result
            if last is not None and last.request_id == rid:
                self._record(cell, name, session, last, output)
            raise
        self._record(cell, name, session, result, output)
        return result

    def _idle(self, name: str, cell_id: str | None = None) -> None:
        """Refuse to start while a background run of this session streams (same cell:
        the old run is stopped, as re-running a cell means "do it again")."""
        entry = self.runs.get(name)
        if entry is None or entry[0].done():
            return
        run, started_in = entry
        if cell_id is not None and cell_id == started_in:
            run.cancel()
            return
        raise ControlError(
            f"session {name!r} is still answering in the background; press its Stop button, "
            f"run `%alloy cancel {name}`, or use another session with -s NAME")

    def _record(self, cell: int | None, name: str, session: Any, result: Result,
                output: str | None) -> None:
        """Keep a finished run's Result in ``-o VAR`` (usage is counted by the core's
        ledger for every request, so nothing is tallied here)."""
        if output:
            self.shell.user_ns[output] = result

    def cancel(self, name: str | None = None) -> list[str]:
        """Stop background runs (one session, or all with ``None``/``"all"``)."""
        names = [n for n in self.runs if name in (None, "all", n)]
        return [n for n in names if self.runs[n][0].cancel()]

    def usage_report(self, name: str | None = None) -> Any:
        """Every request of every session in this kernel, per session/provider/model, and
        the total (``%alloy usage``); a ``_usage.UsageTable`` (text and Markdown)."""
        from alloy_nb.jupyter._usage import usage_table
        from alloy_nb.session import Session

        names = {s.id: n for n, s in self.sessions.items()}
        names.update({v.id: k for k, v in self.shell.user_ns.items()  # the name you typed
                      if isinstance(v, Session) and not k.startswith("_")})
        return usage_table(names, name)

    def history_text(self, name: str | None = None) -> str:
        """The conversation, one line per block (``%alloy history``)."""
        return _display.history_text(self.session(name).messages)

    def sessions_report(self) -> str:
        """One line per session (``%alloy sessions``)."""
        return _display.sessions_report(self.sessions, self.running())

    def running(self) -> dict[str, runner.BackgroundRun]:
        return {n: run for n, (run, _) in self.runs.items() if not run.done()}

    def chat(self, session: Any) -> Any:
        """A chat view of ``session`` (what displaying a Session shows in a kernel); call
        ``.show()`` to publish it. Every turn of the session appears in it, however sent."""
        from alloy_nb.jupyter.widgets import ChatView

        name = self._register(session)
        view = ChatView(
            f"alloy · {name} · {session.model}", session,
            send=lambda prompt, make: self.ask(prompt, name=name, background=True,
                                               view_factory=make),
            banner=self.banner(session), with_input=_interactive(self.shell),
        )
        self.chats.append(view)
        return view

    def refresh_chats(self) -> None:
        """Re-publish the conversation of every shown chat whose session changed."""
        for view in self.chats:
            try:
                view.refresh()
            except Exception:
                runner.log.exception("alloy_nb could not update a chat view")

    def after_cell(self, *_args: Any) -> None:
        """After every cell (``post_run_cell``): chats show turns sent from anywhere, and a
        background run that finished since is published again under this cell, where
        nbclient/nbconvert record it (they drop output sent after its own cell ended)."""
        self.refresh_chats()
        for run, _cell in self.runs.values():
            if run.done() and not getattr(run, "republished", False):
                run.republished = True
                resend = getattr(run.view, "resend", None)
                if callable(resend):
                    try:
                        resend()
                    except Exception:
                        runner.log.exception("alloy_nb could not re-send a finished run")

    def _register(self, session: Any) -> str:
        for name, known in self.sessions.items():
            if known is session:
                return name
        base = session.name if isinstance(session.name, str) and session.name.isidentifier() \
            else "chat"
        name, n = base, 1
        while name in self.sessions:
            n += 1
            name = f"{base}{n}"
        self.sessions[name] = session
        self._adopt(name, session)
        return name

    def _adopt(self, name: str, session: Any) -> None:
        """Give a Session made in Python what notebook tools need: the user namespace and
        the approval card, unless its own ``context`` already sets them (an explicit
        ``allow_run_python`` is the owner's decision and is left alone)."""
        context = session.config.context
        update: dict[str, Any] = {}
        if "namespace" not in context:
            update["namespace"] = self.shell.user_ns
        if isinstance(context.get("approve"), Approver):
            self.approvers[name] = context["approve"]
        elif "approve" not in context and not context.get("allow_run_python"):
            update["approve"] = self.approvers.setdefault(name, Approver(self.policy))
        if update and session.current_request_id is None:
            session.configure(context={**context, **update})


# ---- helpers --------------------------------------------------------------------------


def _resolve(spec: Any) -> Any:
    from alloy_nb.providers import resolve

    try:
        return resolve(spec)
    except ValueError as exc:  # ConfigError is a ValueError
        if str(exc).startswith(("unknown provider spec", "not a provider spec")):
            from alloy_nb.providers import PREFIXES

            raise ControlError(  # in magic terms, not the constructor's
                f"unknown provider {spec!r}: use `%alloy provider demo`, "
                f"`%alloy provider PREFIX:MODEL` (PREFIX one of {', '.join(PREFIXES)}), "
                "or `%alloy provider VAR` with a variable holding a provider") from None
        raise ControlError(str(exc)) from None


def _require_key(provider: Any, where: str) -> None:
    """Fail at once, in magic terms, when ``provider`` has no API key to send with."""
    missing = getattr(provider, "missing_key", None)
    names = missing() if callable(missing) else ()
    if not names:
        return
    var = names[0]
    other = f" (or {' / '.join(names[1:])})" if len(names) > 1 else ""
    raise ControlError(
        f"{where}: no API key. Set {var}{other} where the kernel runs, or in the notebook "
        f"without saving the key in it:\n"
        f"    import os, getpass; os.environ[{var!r}] = getpass.getpass({var + ': '!r})\n"
        f"then run this cell again (not `%env {var}=...`: it prints the key into the "
        f"notebook). The provider is unchanged.")


def _spec_text(spec: Any, provider: Any) -> str:
    return spec if isinstance(spec, str) else _provider_label(provider)


def _provider_label(provider: Any) -> str:
    info = provider.describe() if hasattr(provider, "describe") else {}
    return f"{info.get('provider', type(provider).__name__)}:{info.get('model', '?')}"


def _require_idle(session: Any, name: str, what: str) -> None:
    if session.current_request_id is not None:
        raise ControlError(f"cannot {what} while session {name!r} is answering; wait for it, "
                           f"press Stop, or run `%alloy cancel {name}`")


def _interactive(shell: Any) -> bool:
    """Whether a person drives this cell: front ends that cannot answer ``input()``
    (nbclient, nbconvert, papermill: ``allow_stdin`` false) get no chat input box, so
    what they save is static Markdown only."""
    kernel = getattr(shell, "kernel", None)
    try:
        parent = kernel.get_parent() if kernel is not None else None
    except Exception:
        return True
    content = (parent or {}).get("content") or {}
    return bool(content.get("allow_stdin", True))


def _cell_id(shell: Any) -> str | None:
    """JupyterLab's id of the executing cell (execute request metadata), if any."""
    kernel = getattr(shell, "kernel", None)
    try:
        parent = kernel.get_parent() if kernel is not None else None
    except Exception:
        return None
    metadata = (parent or {}).get("metadata") or {}
    cell = metadata.get("cellId")
    return cell if isinstance(cell, str) else None
