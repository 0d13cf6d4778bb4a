"""Sweeps from Python write the command line's sweep directory: the same runs and numbers as `fairbits
sweep`, read by `fairbits report`. The Ray backend is tested where Ray is installed; scripts/test.sh installs
it and sets FAIRBITS_REQUIRE_RAY, so that there the test cannot be skipped."""

import csv
import os
import shutil
import tempfile

import numpy as np
import pytest

from conftest import run
from fairbits.sweep import grid, sweep

GRID = dict(methods=["sqnn", "mlp"], gammas=[0, 1], seeds=[0, 1], epochs=3, hidden=[8, 4], draws=2,
            forest_trees=5)
FLAGS = ["--methods", "sqnn,mlp", "--gammas", "0,1", "--seeds", "0,1", "--epochs", "3", "--hidden", "8,4",
         "--draws", "2", "--forest-trees", "5"]


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 400
    s = rng.integers(0, 2, n)
    x1 = s + rng.normal(size=n)
    x2 = rng.normal(size=n)
    y = (x2 + 0.5 * x1 + rng.normal(size=n) > 0).astype(int)
    path = tmp_path_factory.mktemp("sweep") / "data.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["x1", "x2", "s", "y"])
        for row in zip(np.round(x1, 4), np.round(x2, 4), s, y):
            w.writerow(row)
    return str(path)


def results(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    keep = [i for i, h in enumerate(rows[0]) if "seconds" not in h]
    return [rows[0]] + sorted([[r[i] for i in keep] for r in rows[1:]]) if rows else []


def test_a_local_sweep_is_the_cli_sweep(table, cli, tmp_path):
    ids = grid(csv=table, target="y", sensitive="s", **GRID)
    assert len(ids) == 6  # sqnn at two gammas and mlp (gamma 0 only), two seeds each
    out = sweep(str(tmp_path / "py"), backend="local", csv=table, target="y", sensitive="s", **GRID)
    run(cli, "sweep", "--csv", table, "--target", "y", "--sensitive", "s", *FLAGS, "--jobs", "1", "--quiet",
        "--out", str(tmp_path / "cli"))
    py, cl = results(os.path.join(out, "results.csv")), results(tmp_path / "cli" / "results.csv")
    assert len(py) == 7 and py == cl
    run(cli, "report", "--from", out, "--out", str(tmp_path / "R.md"))
    assert "fairbits results" in (tmp_path / "R.md").read_text()


def test_a_ray_sweep_writes_the_same_directory(table, tmp_path, monkeypatch):
    if os.environ.get("FAIRBITS_REQUIRE_RAY"):
        import ray
    else:
        ray = pytest.importorskip("ray")
    # Ray puts the driver's working directory first on its workers' sys.path. Started from python/, the
    # directory that holds the package's sources, they must still import the installed package (with its
    # compiled _native), whatever directory pytest was started from.
    monkeypatch.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    # Ray's session files in a short directory of the test's own (not /tmp/ray; socket paths must stay short).
    session = tempfile.mkdtemp(prefix="ray-")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=session)
    try:
        out = sweep(str(tmp_path / "ray"), backend="ray", csv=table, target="y", sensitive="s", **GRID)
        local = sweep(str(tmp_path / "local"), backend="local", csv=table, target="y", sensitive="s", **GRID)
        assert results(os.path.join(out, "results.csv")) == results(os.path.join(local, "results.csv"))
    finally:
        ray.shutdown()
        shutil.rmtree(session, ignore_errors=True)


def test_bad_sweep_settings_are_value_errors(table, tmp_path):
    with pytest.raises(ValueError, match="exactly one of dataset"):
        sweep(str(tmp_path / "x"), backend="local")
    with pytest.raises(ValueError, match="methods"):
        sweep(str(tmp_path / "x"), backend="local", csv=table, target="y", sensitive="s", methods=["nope"])
    with pytest.raises(ValueError, match="backend"):
        sweep(str(tmp_path / "x"), backend="dask", csv=table, target="y", sensitive="s", **GRID)
