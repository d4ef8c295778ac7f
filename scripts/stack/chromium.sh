#!/usr/bin/env bash
# Headless Chromium (Debian package chromium) for the status page test
# (integration/status_page_test.go), which loads cdcd's page in a real browser. Not a service:
# up installs it if missing, status says whether it runs headless, down does nothing.
#   chromium.sh up | down | status
source "$(dirname "$0")/lib.sh"

works() { chromium --headless --no-sandbox --disable-gpu --dump-dom 'data:text/html,<p>ok</p>' 2>/dev/null | grep -q '<p>ok</p>'; }

case "${1:-status}" in
  up)
    command -v chromium >/dev/null || apt_install chromium
    works || die "chromium is installed but cannot load a page headless (try: chromium --headless --no-sandbox --dump-dom about:blank)"
    ;;
  down) ;;
  status)
    if command -v chromium >/dev/null && works; then
      printf 'chromium  ready  %s\n' "$(chromium --version 2>/dev/null | head -n1)"
    else
      printf 'chromium  missing (make stack-up installs it)\n'
      exit 1
    fi
    ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
