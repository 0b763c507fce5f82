#!/usr/bin/env bash
# The benchmark (not a test): hlsd against the ffmpeg peer and nginx, in one
# run. Installs what it needs (nginx, wrk, ffmpeg with x265 for the inputs),
# makes the inputs with ../shared/bench/make-bench-media.sh (~220 MB, a few
# minutes, once), builds a release binary and runs bench/bench.py.
# Usage: scripts/bench.sh [bench.py options, e.g. --rounds 5 --skip serving]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
need=()
for p in nginx-light wrk; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get -o DPkg::Lock::Timeout=300 update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${need[@]}"
fi
../shared/bench/make-bench-media.sh bench-media >/dev/null
cargo build --release --quiet
exec python3 bench/bench.py --hlsd target/release/hlsd --media bench-media --out bench-results "$@"
