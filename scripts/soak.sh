#!/usr/bin/env bash
# Soak (100 clients, 60 s, 8 sessions) and churn (1000 start/stop cycles)
# against a release build; prints the figures and writes
# bench-results/soak.json. Not a test: it asserts nothing.
# Usage: scripts/soak.sh [--clients N] [--seconds S] [--sessions N] [--cycles N]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --quiet
exec python3 bench/soak.py --hlsd target/release/hlsd "$@"
