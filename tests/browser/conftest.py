"""JupyterLab + headless Debian Chromium harness for browser tests.

Fixtures
--------
* ``lab_root_dir`` (session): the server's root dir; a tmp copy of the repo's ``notebooks/``.
  Override it in a conftest closer to the tests to serve another directory.
* ``jupyter_lab`` (session): a ``jupyter lab`` server on 127.0.0.1 with a random port and
  token, isolated config/runtime/data/settings/workspaces dirs, no news or update checks.
  Yields a :class:`LabServer` (``url``, ``token``, ``root_dir``, ``log_path``).
* ``chromium`` (package): Playwright's Chromium, i.e. ``/usr/bin/chromium`` (or
  ``$ALLOY_NB_CHROMIUM``).  Missing Chromium FAILS the tests: CI installs it (scripts/setup).
* ``browser_page`` (function): a fresh context + page; on failure it saves a full-page
  screenshot and prints browser console errors and the server log tail.

Helpers (import with ``from .conftest import ...``): :func:`write_notebook`,
:func:`open_notebook`, :func:`wait_for_kernel_idle`, :func:`run_cell`,
:func:`run_all_cells`, :func:`lab_command`, :func:`wait_for_text`, :func:`cell_output`.

Every test in this directory is marked ``browser`` automatically.

Pitfall: inside a browser test, asyncio thinks a loop is running on the main thread (Playwright's
sync API), so do not call ``asyncio.run`` in-process there; drive the code through the kernel.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from alloy_nb.testing.env import without_api_keys

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_PATH = os.environ.get("ALLOY_NB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_TIMEOUT = 60.0
OUTPUT_SELECTOR = ".jp-OutputArea-output"
NOTEBOOK_SELECTOR = ".jp-NotebookPanel:visible"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    setattr(item, f"_alloy_rep_{report.when}", report)
    return report


# --------------------------------------------------------------------------- server


@dataclass
class LabServer:
    url: str  # http://127.0.0.1:PORT (no trailing slash)
    token: str
    root_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def api(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.url}{path}{sep}token={self.token}"

    def notebook_url(self, name: str) -> str:
        # ?reset drops any saved workspace so nothing else is restored and steals focus.
        return f"{self.url}/lab/tree/{quote(name)}?reset&token={self.token}"

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "<no server log>"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kill_tree(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the server (it shuts its kernels down), then SIGKILL whatever is left.

    Kernels run in their own sessions (jupyter_client uses start_new_session), so a process
    group kill would miss them; walk the tree with psutil (an ipykernel dependency) instead.
    """
    try:
        import psutil

        children = psutil.Process(proc.pid).children(recursive=True)
    except Exception:
        children = []
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    for child in children:
        try:
            if child.is_running():
                child.kill()
        except Exception:
            pass


def _write_user_settings(settings_dir: Path) -> None:
    notif = settings_dir / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notif.parent.mkdir(parents=True, exist_ok=True)
    # No news toast ("get notified about official Jupyter news?"), no update check, no toasts
    # covering the bottom-right corner.
    notif.write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True})
    )


@pytest.fixture(scope="session")
def lab_root_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lab_root")
    src = REPO_ROOT / "notebooks"
    if src.is_dir():
        shutil.copytree(src, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".ipynb_*"))
    return root


@pytest.fixture(scope="session")
def jupyter_lab(
    tmp_path_factory: pytest.TempPathFactory, lab_root_dir: Path
) -> Iterator[LabServer]:
    base = tmp_path_factory.mktemp("lab_server")
    dirs = {k: base / k for k in ("config", "data", "runtime", "ipython", "settings", "workspaces")}
    for d in dirs.values():
        d.mkdir()
    _write_user_settings(dirs["settings"])

    env = without_api_keys(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(dirs["config"]),
        # Only the *user* data dir moves; {sys.prefix}/share/jupyter (ipywidgets'
        # labextension, the python3 kernelspec) stays on the data path.
        JUPYTER_DATA_DIR=str(dirs["data"]),
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
        IPYTHONDIR=str(dirs["ipython"]),
        JUPYTER_PLATFORM_DIRS="1",
        PYTHONUNBUFFERED="1",
    )
    env.pop("JUPYTER_PATH", None)
    env.pop("JUPYTER_CONFIG_PATH", None)

    token = secrets.token_hex(16)
    last_error = "not started"
    for _attempt in range(3):  # a free port can be taken between probe and bind
        port = _free_port()
        log_path = base / f"server-{port}.log"
        cmd = [
            sys.executable, "-m", "jupyter", "lab",
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={lab_root_dir}",
            "--ServerApp.disable_check_xsrf=False",
            "--ServerApp.terminals_enabled=False",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            f"--LabApp.user_settings_dir={dirs['settings']}",
            f"--LabApp.workspaces_dir={dirs['workspaces']}",
            "--LabApp.expose_app_in_browser=True",
        ]  # fmt: skip
        log = log_path.open("wb")
        proc = subprocess.Popen(
            cmd, cwd=lab_root_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        log.close()
        server = LabServer(f"http://127.0.0.1:{port}", token, lab_root_dir, log_path, proc)
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(server.api("/api/status"), timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError) as e:
                last_error = repr(e)
            time.sleep(0.2)
        else:
            last_error = f"exit code {proc.poll()}; log:\n{server.log_tail()}"
            _kill_tree(proc)
            continue
        try:
            yield server
        finally:
            _kill_tree(proc)
        return
    pytest.fail(f"jupyter lab did not start on 127.0.0.1: {last_error}", pytrace=False)


# --------------------------------------------------------------------------- browser


@pytest.fixture(scope="package")
def chromium() -> Iterator[Any]:
    # Package scope, not session: while Playwright's sync API is active, asyncio believes a
    # loop is running on the main thread (Playwright marks it so between sync calls), so any
    # later test calling asyncio.run() would fail with "cannot be called from a running event
    # loop". Playwright stops when the last test of tests/browser/ is done.
    if not (os.path.isfile(CHROMIUM_PATH) and os.access(CHROMIUM_PATH, os.X_OK)):
        pytest.fail(
            f"Chromium not found at {CHROMIUM_PATH}. Browser tests need Debian's chromium: run "
            "scripts/setup (or `apt-get install -y chromium`), or point ALLOY_NB_CHROMIUM at a "
            "Chromium binary. Never run `playwright install`.",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM_PATH, headless=True, chromium_sandbox=False, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_page(
    chromium: Any, jupyter_lab: LabServer, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    page = context.new_page()
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console_errors.append(f"pageerror: {e}"))
    try:
        yield page
    finally:
        rep = getattr(request.node, "_alloy_rep_call", None)
        if rep is not None and rep.failed:
            out_dir = Path(os.environ.get("ALLOY_NB_ARTIFACTS_DIR", tmp_path))
            out_dir.mkdir(parents=True, exist_ok=True)
            shot = out_dir / f"{request.node.name}.png"
            try:
                page.screenshot(path=str(shot), full_page=True)
            except Exception as e:
                shot = Path(f"<screenshot failed: {e}>")
            errors = "\n".join(console_errors[-30:]) or "<none>"
            sys.stderr.write(
                f"\n[browser] screenshot: {shot}\n[browser] console errors:\n{errors}\n"
                f"[browser] server log tail:\n{jupyter_lab.log_tail()}\n"
            )
        context.close()


# --------------------------------------------------------------------------- helpers


def write_notebook(root_dir: Path, name: str, sources: Sequence[str]) -> Path:
    """Write a notebook of code cells (``# md`` first line -> markdown) with the python3 kernel."""
    import nbformat

    cells = []
    for src in sources:
        if src.startswith("# md\n"):
            cells.append(nbformat.v4.new_markdown_cell(src.removeprefix("# md\n")))
        else:
            cells.append(nbformat.v4.new_code_cell(src))
    nb = nbformat.v4.new_notebook(cells=cells)
    # Without a kernelspec Lab pops a "Select Kernel" dialog instead of starting one.
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    path = Path(root_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


_KERNEL_IDLE_JS = """() => {
    const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const sc = w && w.sessionContext;
    if (!sc || !w.content || !sc.isReady || !sc.session || !sc.session.kernel) return false;
    // every cell model has a rendered cell node (notebooks render progressively)
    const rendered = w.node.querySelectorAll('.jp-Notebook .jp-Cell').length;
    return sc.kernelDisplayStatus === 'idle' && rendered === w.content.widgets.length;
}"""


def wait_for_kernel_idle(page: Any, timeout: float = 60_000) -> None:
    """Wait until the current notebook has a started, connected kernel that is idle.

    Not the toolbar's ``data-status="idle"``: it says idle for a moment *before* the kernel is
    even started, and running a cell then pops a "Select Kernel" dialog.
    """
    page.wait_for_function(_KERNEL_IDLE_JS, timeout=timeout)


def open_notebook(page: Any, lab: LabServer, name: str, *, timeout: float = 60_000) -> Any:
    """Open ``name`` (relative to ``lab.root_dir``) in Lab and wait for an idle kernel."""
    page.goto(lab.notebook_url(name), wait_until="domcontentloaded")
    panel = page.locator(NOTEBOOK_SELECTOR).first
    panel.locator(".jp-Cell").first.wait_for(timeout=timeout)
    wait_for_kernel_idle(page, timeout)
    return panel


def lab_command(page: Any, command: str, args: dict[str, Any] | None = None) -> None:
    """Start a JupyterLab command (needs ``--LabApp.expose_app_in_browser``, set above).

    Fire and forget: the command's promise is not awaited (``notebook:run-all-cells`` may never
    resolve while a dialog is open); wait for its effect in the page instead.
    """
    page.evaluate(
        "([c, a]) => { window.jupyterapp.commands.execute(c, a); }", [command, args or {}]
    )


def _cells(page: Any) -> Any:
    return page.locator(f"{NOTEBOOK_SELECTOR} .jp-Notebook .jp-Cell")


def run_cell(page: Any, index: int, *, timeout: float = 60_000) -> Any:
    """Select cell ``index`` (0-based), run it in place (Ctrl+Enter) and wait until it ran.

    Ctrl+Enter rather than Shift+Enter: Shift+Enter on the last cell appends an empty cell.
    "Ran" means the input prompt changed to a new ``[n]``. Returns the cell locator.
    """
    cell = _cells(page).nth(index)
    cell.scroll_into_view_if_needed()
    before = cell.locator(".jp-InputPrompt").first.text_content()
    cell.locator(".jp-InputPrompt").first.click()  # selects without entering edit mode
    page.keyboard.press("Escape")
    page.keyboard.press("Control+Enter")
    page.wait_for_function(
        """([el, before]) => {
            const p = el.querySelector('.jp-InputPrompt');
            return p && p.textContent !== before && /\\[\\d+\\]/.test(p.textContent);
        }""",
        arg=[cell.element_handle(), before],
        timeout=timeout,
    )
    return cell


_PROMPTS_JS = """() => [...document.querySelectorAll('.jp-NotebookPanel')]
    .filter(n => n.getBoundingClientRect().width > 0)
    .flatMap(n => [...n.querySelectorAll('.jp-CodeCell .jp-InputPrompt')])
    .map(p => p.textContent)"""


def run_all_cells(page: Any, *, timeout: float = 120_000) -> None:
    """Run every cell (``notebook:run-all-cells``) and wait until each code cell ran again."""
    before = page.evaluate(_PROMPTS_JS)
    lab_command(page, "notebook:run-all-cells")
    page.wait_for_function(
        f"""(before) => {{
            const now = ({_PROMPTS_JS})();
            return now.length === before.length &&
                now.every((t, i) => t !== before[i] && /\\[\\d+\\]/.test(t));
        }}""",
        arg=before,
        timeout=timeout,
    )
    wait_for_kernel_idle(page, timeout)


def cell_output(page: Any, index: int) -> Any:
    """Locator of the output area of cell ``index``."""
    return _cells(page).nth(index).locator(".jp-OutputArea")


def wait_for_text(
    page: Any, text: str, timeout: float = 30_000, *, scope: str = OUTPUT_SELECTOR
) -> Any:
    """Wait for ``text`` inside an output (not the source editor, which also contains it)."""
    loc = page.locator(scope).filter(has_text=text).first
    loc.wait_for(state="visible", timeout=timeout)
    return loc
