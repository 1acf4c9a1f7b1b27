"""Batch runs over data: ``alloy.map`` / ``alloy.amap`` and their ``BatchResult``.

``_map`` runs items on the local event loop; ``_dask`` spreads partitions over a
``dask.distributed`` cluster; ``_batch_mode`` submits to the vendors' batch APIs through
``_vendor``. Progress reporting (``_progress``) is pluggable so the core never imports
IPython; the notebook layer registers its display through ``_hooks`` (which, like this
package's import, stays free of pydantic so ``%load_ext`` remains light).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alloy_nb.batch._hooks import set_notebook_reporter
    from alloy_nb.batch._map import amap, map
    from alloy_nb.batch._progress import MapProgress
    from alloy_nb.batch._result import BatchResult

__all__ = ["BatchResult", "MapProgress", "amap", "map", "set_notebook_reporter"]

_LAZY = {
    "amap": "alloy_nb.batch._map",
    "map": "alloy_nb.batch._map",
    "MapProgress": "alloy_nb.batch._progress",
    "BatchResult": "alloy_nb.batch._result",
    "set_notebook_reporter": "alloy_nb.batch._hooks",  # for front ends (alloy_nb.jupyter)
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'alloy_nb.batch' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
