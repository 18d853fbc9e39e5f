#!/usr/bin/env bash
# Installs the system programs editq's stack and tests need, when they are missing:
# redis-server (the broker and state store) and docker-compose (to validate docker-compose.yml);
# with --tests also Debian's chromium, which the studio's browser test drives through Playwright,
# Debian's prometheus package for promtool, which checks and tests ops/prometheus/alerts.yaml, and
# Debian's redis-sentinel, which tests/stack/test_sentinel.py runs three of.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
if [ "${1:-}" = "--tests" ] && [ ! -x /usr/bin/chromium ]; then missing+=(chromium); fi
if [ "${1:-}" = "--tests" ] && ! command -v promtool >/dev/null 2>&1; then missing+=(prometheus); fi
if [ "${1:-}" = "--tests" ] && ! command -v redis-sentinel >/dev/null 2>&1; then missing+=(redis-sentinel); fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || true
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi

for pkg in "${missing[@]}"; do
  if [ "$pkg" = redis-server ]; then
    echo "editq needs redis-server on PATH: install it (Debian/Ubuntu: sudo apt-get install redis-server," >&2
    echo "macOS: brew install redis), or point EDITQ_REDIS_URL at a running Redis." >&2
    exit 1
  fi
  case "$pkg" in
    chromium) echo "note: chromium is not installed; the studio's browser test will be skipped" >&2 ;;
    prometheus) echo "note: promtool is not installed; the alert rule tests will be skipped" >&2 ;;
    redis-sentinel) echo "note: redis-sentinel is not installed; the Sentinel test runs redis-server --sentinel" >&2 ;;
    *) echo "note: $pkg is not installed; the test that validates docker-compose.yml will be skipped" >&2 ;;
  esac
done
