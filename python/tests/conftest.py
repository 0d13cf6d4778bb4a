"""Shared fixtures: a small slice of Adult (fast to fit) and the command-line binary."""

import os
import shutil
import subprocess

import numpy as np
import pytest

from fairbits.datasets import load_adult

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


@pytest.fixture(scope="session")
def adult():
    return load_adult()


@pytest.fixture(scope="session")
def small(adult):
    """1500 training and 800 test rows of Adult (pandas frames)."""
    d = adult
    return (
        d.X_train.iloc[:1500].reset_index(drop=True),
        d.y_train[:1500],
        d.s_train.iloc[:1500].reset_index(drop=True),
        d.X_test.iloc[:800].reset_index(drop=True),
        d.y_test[:800],
        d.s_test.iloc[:800].reset_index(drop=True),
    )


@pytest.fixture(scope="session")
def cli():
    """The fairbits binary: $FAIRBITS_CLI (set by .ci/run, so the interop tests cannot be skipped
    there), else the workspace's release build."""
    path = os.environ.get("FAIRBITS_CLI") or os.path.join(REPO, "target", "release", "fairbits")
    if not os.path.exists(path):
        if os.environ.get("FAIRBITS_CLI"):
            raise FileNotFoundError(path)
        pytest.skip("the fairbits binary is not built (cargo build --release)")
    return path


def run(cli, *args, cwd=None):
    r = subprocess.run([cli, *args], capture_output=True, text=True, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return r


def blobs(n=400, seed=0):
    """Two numeric features and a text one; y depends on the first, the group on the second."""
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 2, n)
    y = (rng.normal(size=n) + 1.5 * (rng.random(n) < 0.5) > 0.7).astype(int)
    x0 = y * 2.0 + rng.normal(size=n)
    x1 = s * 1.0 + rng.normal(size=n)
    colour = np.where(rng.random(n) < 0.5, "red", "blue")
    return x0, x1, colour, y, s


def small_frame(n=60, seed=0):
    """A numeric and a text feature, binary y and two groups: the smallest frame fit accepts."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"age": rng.normal(40, 10, n), "job": rng.choice(["a", "b", "c"], n)})
    y = rng.integers(0, 2, n)
    s = np.where(rng.random(n) < 0.5, "f", "m")
    return X, y, s
