#!/usr/bin/env bash
# The hostile-input suite (tests/hostile.rs): every case of docs/reliability.md's "Hostile input" table run
# in a fresh directory, then one line per case with its result (pass / FAIL and why), then the crash tests
# (kill -9 in every phase, two writers, Ctrl-C). Part of CI through the test command; this prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --quiet --test hostile -- --nocapture --test-threads 1 2>&1 | grep -E '^(pass|FAIL|     |test )'
