"""Finding 2 end to end (issue 9): a real ipykernel started with a secret in its environment
runs Bash tool calls that try every listed escape; the secret never reaches a tool result
with the sandbox, and (proving the probe works) does without it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from alloy_nb.tools import _sandbox

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(not _sandbox.sandbox_available(), reason="bubblewrap is not usable"),
]

REPO = Path(__file__).resolve().parents[2]
SECRET = "kernelside-" + "Q7" * 16

CELL = r'''
import json
import alloy_nb as alloy
from alloy_nb.providers.scripted import Scripted
from alloy_nb.tools.core import Bash

commands = [
    "tr '\\0' '\\n' < /proc/$PPID/environ",
    "sh -c 'cat /proc/$PPID/environ /proc/1/environ' | tr '\\0' '\\n'",
    "env bash -c 'env; for p in /proc/[0-9]*; do tr \"\\0\" \"\\n\" < $p/environ; done'",
    "python3 -c 'import os; print(os.environ); "
    "print(open(\"/proc/%d/environ\" % os.getppid()).read())'",
]
def results(sandbox):
    calls = [("bash", {"command": c}) for c in commands]
    r = alloy.run("go", provider=Scripted([Scripted.tool_calls(*calls), "done"]), tools=[Bash],
                  context={"bash_restricted": False, "bash_sandbox": sandbox})
    return [b.content for m in r.messages for b in m.content if b.type == "tool_result"]
print("RESULTS" + json.dumps({"auto": results("auto"), "off": results(False)}))
'''


def test_finding2_kernel_environment_unreachable_from_bash_in_a_real_kernel(
    tmp_path: Path,
) -> None:
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    spec = tmp_path / "alloysbx"
    spec.mkdir()
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "alloy_nb sandbox test", "language": "python",
    }))
    km = KernelManager(kernel_name="alloysbx",
                       kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(tmp_path)]))
    env = {**os.environ, "ALLOY_E2E_API_KEY": SECRET, "PYTHONPATH": str(REPO)}
    km.start_kernel(cwd=str(tmp_path), env=env)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        out: list[str] = []
        reply = kc.execute_interactive(
            CELL, timeout=90,
            output_hook=lambda msg: out.append(msg["content"].get("text", ""))
            if msg["msg_type"] == "stream" else None)
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    text = "".join(out)
    found = json.loads(text.split("RESULTS", 1)[1].strip().splitlines()[0])
    assert len(found["auto"]) == 4 and len(found["off"]) == 4
    for result in found["auto"]:
        assert SECRET not in result and "Q7Q7Q7" not in result
    assert any(SECRET in r for r in found["off"])  # the probe reaches it where no sandbox
