"""Cold start: ``import alloy_nb`` and ``%load_ext alloy_nb`` vs ``import httpx, pydantic``.

httpx and pydantic are alloy_nb's two core dependencies, so their import time is the floor;
the target is that alloy_nb adds little on top (ratio under 1.2x). Each figure is the median
of N fresh interpreters (cold module cache, warm OS file cache), timed inside the child so
interpreter start-up is excluded. For ``%load_ext`` the child builds an IPython
``InteractiveShell`` first and times only the ``load_ext`` call, which includes importing
alloy_nb and its Jupyter layer, as a user pays it.

    python benchmarks/bench_import.py [--runs 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

TARGET_RATIO = 1.2

BASELINE = """
import time
t0 = time.perf_counter()
import httpx, pydantic
print(time.perf_counter() - t0)
"""

# ``import pydantic`` is itself lazy (BaseModel loads on first access), so this second
# floor shows what any pydantic-based package pays once it defines a model.
BASELINE_MODELS = """
import time
t0 = time.perf_counter()
import httpx
from pydantic import BaseModel
print(time.perf_counter() - t0)
"""

# What any asyncio + httpx + pydantic agent library pays before its first run: the floor
# for the "first use" case below (asyncio alone is ~40 ms of it).
BASELINE_RUNTIME = """
import time
t0 = time.perf_counter()
import asyncio, httpx
from pydantic import BaseModel
print(time.perf_counter() - t0)
"""

IMPORT = """
import time
t0 = time.perf_counter()
import alloy_nb
print(time.perf_counter() - t0)
"""

# alloy_nb's names load lazily too; this is what a script pays before its first run().
FIRST_USE = """
import time
t0 = time.perf_counter()
import alloy_nb
alloy_nb.run, alloy_nb.Session, alloy_nb.tool
print(time.perf_counter() - t0)
"""

# The shell itself (and IPython) are set up before the clock starts: they are the
# kernel's cost, not ours.
LOAD_EXT = """
import time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
t0 = time.perf_counter()
shell.run_line_magic("load_ext", "alloy_nb")
elapsed = time.perf_counter() - t0
assert "alloy" in shell.magics_manager.magics["cell"], "%%alloy was not registered"
print(elapsed)
"""


def measure(code: str) -> float:
    """Seconds reported by one fresh interpreter running ``code``."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{out.stderr}")
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    cases = {
        "import httpx, pydantic": BASELINE,
        "httpx + pydantic.BaseModel": BASELINE_MODELS,
        "asyncio + httpx + BaseModel": BASELINE_RUNTIME,
        "import alloy_nb": IMPORT,
        "alloy_nb + run/Session": FIRST_USE,
        "%load_ext alloy_nb": LOAD_EXT,
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    measure(BASELINE)  # warm the OS file cache so the first case is not penalised
    for _ in range(args.runs):  # interleaved, so machine-load drift hits every case alike
        for name, code in cases.items():
            samples[name].append(measure(code))
    medians = {name: statistics.median(times) for name, times in samples.items()}
    base = medians["import httpx, pydantic"]
    report = {
        "runs": args.runs,
        "python": sys.version.split()[0],
        "median_ms": {k: round(v * 1000, 1) for k, v in medians.items()},
        "ratio_import": round(medians["import alloy_nb"] / base, 2),
        "ratio_first_use": round(medians["alloy_nb + run/Session"] / base, 2),
        "ratio_load_ext": round(medians["%load_ext alloy_nb"] / base, 2),
        # first use against the asyncio + httpx + BaseModel floor: what alloy_nb itself adds
        "ratio_first_use_vs_runtime": round(
            medians["alloy_nb + run/Session"] / medians["asyncio + httpx + BaseModel"], 2
        ),
        "target_ratio": TARGET_RATIO,
    }
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"median of {args.runs} fresh interpreters (Python {report['python']})")
    for name, ms in report["median_ms"].items():
        ratio = medians[name] / base
        print(f"  {name:<28} {ms:8.1f} ms   {ratio:5.2f}x")
    for key in ("ratio_import", "ratio_first_use", "ratio_load_ext", "ratio_first_use_vs_runtime"):
        verdict = "ok" if report[key] <= TARGET_RATIO else "over target"
        print(f"{key}: {report[key]:.2f}x (target < {TARGET_RATIO}x): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
