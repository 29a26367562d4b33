#!/usr/bin/env bash
# Installs the Debian packages the test suite drives: headless Chromium with its driver and a CJK font (browser tests) and
# docker-compose (validates docker-compose.yml; no Docker engine is needed for that). Skips what it cannot install.
set -u
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
# a CJK font, so screenshots of Chinese pages show characters rather than empty boxes
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
  missing+=(docker-compose)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} for the test suite..." >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >/dev/null 2>&1 \
    || echo "could not install ${missing[*]}; the tests that need them will be reported as skipped" >&2
else
  echo "missing ${missing[*]} and cannot install here; the tests that need them will be reported as skipped" >&2
fi
exit 0
