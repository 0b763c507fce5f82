#!/usr/bin/env bash
# The test command: installs what is missing (scripts/setup.sh, which also
# makes fixtures/), then runs every unit and integration test. Integration
# tests use ../shared/media when present and skip with a notice otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --no-fail-fast "$@"
