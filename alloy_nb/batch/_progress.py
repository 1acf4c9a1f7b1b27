"""Progress of a batch: a snapshot model and the reporters that show it.

The core never imports IPython: ``progress=True`` picks the reporter the notebook layer
registered (``_hooks.set_notebook_reporter``, done by ``%load_ext alloy_nb``) when it says
it can show one, else a tqdm bar on stderr. ``progress`` may also be a callable taking
``MapProgress`` snapshots, or False.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

from pydantic import BaseModel

from alloy_nb.batch._hooks import notebook_reporter

__all__ = ["MapProgress", "Reporter", "Tracker", "make_reporter"]

log = logging.getLogger("alloy_nb")


class MapProgress(BaseModel):
    """One snapshot: counts so far, cost so far (cents), and the time estimate."""

    total: int
    done: int = 0  # finished, failed included
    failed: int = 0
    cached: int = 0
    running: int = 0
    cost_cents: float = 0.0
    priced: bool = True
    elapsed_s: float = 0.0
    eta_s: float | None = None
    finished: bool = False

    @property
    def cost_label(self) -> str:
        dollars = f"${self.cost_cents / 100:.4f}"
        return dollars if self.priced else f"≥ {dollars} (partly unpriced)"

    def line(self) -> str:
        eta = "" if self.eta_s is None or self.finished else f", ETA {self.eta_s:.0f} s"
        extra = f", {self.cached} cached" if self.cached else ""
        verb = "running" if not self.finished else (
            "finished" if self.done >= self.total else "stopped")
        return (f"alloy.map {verb}: {self.done}/{self.total} done, {self.failed} failed"
                f"{extra}, cost {self.cost_label}, {self.elapsed_s:.1f} s{eta}")


class Reporter(Protocol):
    def update(self, progress: MapProgress) -> None: ...
    def close(self, progress: MapProgress) -> None: ...


class _Callback:
    def __init__(self, fn: Callable[[MapProgress], Any]) -> None:
        self.fn = fn

    def update(self, progress: MapProgress) -> None:
        try:
            self.fn(progress)
        except Exception:
            log.exception("progress callback raised; ignoring")

    close = update


class _Tqdm:
    """A tqdm bar on stderr (a plain line every few seconds when tqdm is missing)."""

    def __init__(self, total: int) -> None:
        self.last = 0.0
        try:
            from tqdm import tqdm
        except ImportError:
            self.bar: Any = None
            return
        self.bar = tqdm(total=total, file=sys.stderr, desc="alloy.map", unit="item",
                        dynamic_ncols=True, leave=True)

    def update(self, progress: MapProgress) -> None:
        if self.bar is None:
            now = time.monotonic()
            if now - self.last >= 5:
                self.last = now
                print(progress.line(), file=sys.stderr)
            return
        self.bar.set_postfix_str(
            f"failed={progress.failed} cost={progress.cost_label}", refresh=False)
        self.bar.update(progress.done - self.bar.n)

    def close(self, progress: MapProgress) -> None:
        if self.bar is None:
            print(progress.line(), file=sys.stderr)
            return
        self.update(progress)
        self.bar.close()


class _Null:
    def update(self, progress: MapProgress) -> None:
        pass

    def close(self, progress: MapProgress) -> None:
        pass


def make_reporter(progress: Any, total: int) -> Reporter:
    """``True`` → notebook display or stderr bar; callable → it; False/None → nothing."""
    if progress is None or progress is False:
        return _Null()
    if callable(progress):
        return _Callback(progress)
    if progress is not True:
        from alloy_nb.errors import ConfigError

        raise ConfigError(f"progress must be True, False or a callable, got {progress!r}")
    factory = notebook_reporter()
    if factory is not None:
        try:
            reporter: Reporter | None = factory(total)
        except Exception:
            log.exception("the notebook progress display failed; using stderr")
            reporter = None
        if reporter is not None:
            return reporter
    return _Tqdm(total)


class Tracker:
    """Counts as items finish and pushes throttled snapshots to a reporter."""

    def __init__(self, reporter: Reporter, total: int, min_interval_s: float = 0.1) -> None:
        self.reporter = reporter
        self.state = MapProgress(total=total)
        self.started = time.monotonic()
        self.last = 0.0
        self.min_interval_s = min_interval_s
        self.ran = 0  # finished items that were not cached (for the ETA)

    def snapshot(self, finished: bool = False) -> MapProgress:
        s = self.state
        elapsed = time.monotonic() - self.started
        left = s.total - s.done
        eta = elapsed / self.ran * left if self.ran and left else (0.0 if not left else None)
        return s.model_copy(update={"elapsed_s": elapsed, "eta_s": eta, "finished": finished})

    def item(self, *, failed: bool = False, cached: bool = False, cost_cents: float = 0.0,
             priced: bool = True, count: int = 1) -> None:
        s = self.state
        s.done += count
        s.failed += count if failed else 0
        s.cached += count if cached else 0
        s.cost_cents += cost_cents
        s.priced = s.priced and priced
        if not cached:
            self.ran += count
        self.push()

    def running(self, n: int) -> None:
        self.state.running = n

    def push(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last >= self.min_interval_s:
            self.last = now
            self.reporter.update(self.snapshot())

    def close(self) -> MapProgress:
        final = self.snapshot(finished=True)
        self.reporter.close(final)
        return final
