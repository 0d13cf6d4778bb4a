#!/usr/bin/env bash
# The whole test suite: the Rust tests (release mode: training in debug builds is slow), then the Python
# package built into a virtual environment (target/venv, created once) and its pytest suite, which also
# checks Python against the command-line binary built here. Needs the Rust toolchain, python3 with venv,
# and the package index (maturin, numpy, pandas, polars, pyarrow, scipy, scikit-learn, fairlearn, pytest, ray).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release
cargo build --release --bin fairbits
venv=target/venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check maturin numpy pandas scikit-learn fairlearn pytest
# The input tests' other libraries (polars and pyarrow frames, scipy sparse matrices): without them they skip.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check polars pyarrow scipy
# Ray, for the test of sweeps on Ray (FAIRBITS_REQUIRE_RAY below: it fails there rather than skip).
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check ray
# The documented install: `pip install ./python` (maturin builds the abi3 wheel; the crate shares target/).
start=$(date +%s)
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps ./python
echo "pip install ./python: $(( $(date +%s) - start )) s"
# From python/, the tests import the installed package: its sources are in python/python/fairbits, not in a
# fairbits/ folder here (Ray's workers, which put this directory first on sys.path, too).
cd python
FAIRBITS_CLI="$PWD/../target/release/fairbits" FAIRBITS_REQUIRE_RAY=1 "../$venv/bin/pytest" -q -p no:cacheprovider
