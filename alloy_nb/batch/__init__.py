"""Batch runs over data: ``alloy.map`` / ``alloy.amap`` and their ``BatchResult``.

``_map`` runs items on the local event loop; ``_dask`` spreads partitions over a
``dask.distributed`` cluster; ``_batch_mode`` submits to the vendors' batch APIs through
``_vendor``. Progress reporting (``_progress``) is pluggable so the core never imports
IPython; the notebook layer registers its display.
"""

from __future__ import annotations

from alloy_nb.batch._map import amap, map
from alloy_nb.batch._progress import MapProgress
from alloy_nb.batch._result import BatchResult

__all__ = ["BatchResult", "MapProgress", "amap", "map"]
