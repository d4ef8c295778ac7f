#!/usr/bin/env bash
# Runs promtool (from Debian's prometheus package, installed if missing) with the given arguments.
# `check rules alerts.yaml` and `test rules alerts_test.yaml` (as `make alerts-test` runs them in
# deploy/prometheus) also cover the MySQL rules in alerts-mysql.yaml and alerts-mysql_test.yaml.
set -euo pipefail
if ! command -v promtool >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  echo "[promtool] installing Debian package prometheus (for promtool)" >&2
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
args=("$@")
if [ "$#" -eq 3 ] && [ "$2" = rules ]; then
  case "$1 $3" in
    "check alerts.yaml") [ -f alerts-mysql.yaml ] && args+=(alerts-mysql.yaml) ;;
    "test alerts_test.yaml") [ -f alerts-mysql_test.yaml ] && args+=(alerts-mysql_test.yaml) ;;
  esac
fi
exec promtool "${args[@]}"
