#!/usr/bin/env bash
# Installs what hlsd needs, makes the fixtures, then runs hlsd (release
# build) on fixtures/ or on the media folder you name.
# Usage: scripts/run.sh [MEDIA_DIR] [more hlsd options, e.g. --addr 0.0.0.0:8080]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# The first argument is the media folder unless it is an option.
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  media=$(realpath "$1"); shift
else
  media="$root/fixtures"
fi
"$root/scripts/setup.sh"
cd "$root"
exec cargo run --release --quiet -- --media-dir "$media" "$@"
