#!/usr/bin/env bash
# Installs what hlsd needs on Debian 12: GStreamer 1.22 (headers + plugins),
# the tools the tests use as HLS clients (ffprobe/ffmpeg, and Debian's
# chromium driven by playwright-core; nginx-light, in front of several
# nodes in the scale-out test), mkvtoolnix (test media muxed by
# mkvmerge), stress-ng (loads the CPU where timing must change nothing),
# postgresql (the cluster's shared catalogue; its tests start their own
# server with initdb and pg_ctl, never the system's),
# python3 (it makes the coverage
# corpus, tests/media/make-coverage-media.sh), the web page's hls.js, then makes the
# small fixture files in fixtures/. Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(
  pkg-config build-essential libx264-dev libswscale-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools
  ffmpeg python3
  chromium
  nginx-light
  mkvtoolnix stress-ng
  postgresql
)
if ! command -v cargo >/dev/null; then
  echo "setup: cargo not found: install Rust (1.92 or newer) with rustup first" >&2
  exit 1
fi
missing=()
if [ -n "${IN_NIX_SHELL:-}" ] || ! command -v dpkg-query >/dev/null; then
  pkgs=()  # nix develop (or another distribution) provides GStreamer itself
fi
for p in ${pkgs[@]+"${pkgs[@]}"}; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get -o DPkg::Lock::Timeout=300 update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}"
fi

# Fail early and clearly if an element the pipelines need is missing.
for e in uridecodebin hlssink2 x264enc avenc_aac h264parse aacparse videoconvertscale; do
  gst-inspect-1.0 --exists "$e" || { echo "setup: GStreamer element $e is missing" >&2; exit 1; }
done

# The web page's hls.js and the browser tests' playwright-core, pinned in
# web/package-lock.json, from the npm registry; hls.js is copied where hlsd
# serves it (web/static/vendor/), so the page works offline.
if ! command -v npm >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends nodejs npm
fi
if [ ! -f web/node_modules/.package-lock.json ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
fi
mkdir -p web/static/vendor
cp web/node_modules/hls.js/dist/hls.min.js web/static/vendor/hls.min.js

scripts/make-fixtures.sh
