#!/usr/bin/env bash
# Runs promtool (from Debian's prometheus package, installed if missing) with the given arguments.
set -euo pipefail
if ! command -v promtool >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  echo "[promtool] installing Debian package prometheus (for promtool)" >&2
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
exec promtool "$@"
