"""engine="dask" on a LocalCluster of 2 worker processes on loopback: items partitioned,
run with amap on the workers, gathered in order, cache_dir shared."""

from __future__ import annotations

import sys
from typing import Any, Literal

import pytest
from pydantic import BaseModel

import alloy_nb as alloy
from alloy_nb.errors import ConfigError
from alloy_nb.providers.demo import Demo

distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers may not import tests


class Verdict(BaseModel):
    label: Literal["good", "bad", "meh"]
    score: int


@pytest.fixture(scope="module")
def client() -> Any:
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None,
                                       worker_dashboard_address=None)
    c = distributed.Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


def test_dask_matches_local_in_order_and_shares_the_cache(client: Any, tmp_path: Any) -> None:
    items = [f"review {i}" for i in range(24)]
    provider = Demo(delay_s=0)
    with distributed.get_task_stream(client) as stream:
        dist = alloy.map("Rate {item}", items, provider=provider, output_type=Verdict,
                         engine="dask", cache_dir=tmp_path, progress=False)
    ran_on = {t["worker"] for t in stream.data if t["key"].startswith("_run_partition")}
    assert len(ran_on) == 2  # both worker processes ran partitions
    assert dist.errors == {} and len(dist.outputs) == 24
    local = alloy.map("Rate {item}", items, provider=provider, output_type=Verdict,
                      progress=False)
    assert dist.outputs == local.outputs  # deterministic demo: same answer, same order
    assert all(isinstance(o, Verdict) for o in dist.outputs)
    assert set(dist.statuses) == {"completed"}
    # the workers wrote the shared cache: a local re-run asks for nothing
    again = alloy.map("Rate {item}", items, provider=provider, output_type=Verdict,
                      cache_dir=tmp_path, progress=False)
    assert again.statuses == ["cached"] * 24 and again.outputs == dist.outputs


def test_dask_reports_item_failures_per_item(client: Any) -> None:
    b = alloy.map("{item}", ["ok", "ok"], provider=Demo(delay_s=0), engine="dask",
                  progress=False, max_turns=0)
    assert b.statuses == ["max_turns", "max_turns"] and b.errors == {}


def test_dask_refuses_batch_budget(client: Any) -> None:
    with pytest.raises(ConfigError, match="max_budget_cents"):
        alloy.map("{item}", [1], provider=Demo(), engine="dask", max_budget_cents=1,
                  model_metadata_overrides={"demo": {"limit": 1000, "input_price": 1,
                                                     "output_price": 1}})


def test_no_client_is_a_config_error() -> None:
    # runs in its own process so the module's client is not current there
    import subprocess

    code = ("import alloy_nb as a\nfrom alloy_nb.providers.demo import Demo\n"
            "try:\n    a.map('{item}', [1], provider=Demo(), engine='dask', progress=False)\n"
            "except a.ConfigError as e:\n    print('CONFIG', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert "CONFIG" in out.stdout and "Client" in out.stdout, out.stderr
