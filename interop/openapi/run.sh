#!/usr/bin/env bash
# The OpenAPI document against two validators nobody here wrote: openapi-spec-validator (the
# OpenAPI 3.1 specification's schema) and Redocly's recommended rules, with zero errors each.
#
# Usage: run.sh PATH_TO_TODO_BACKEND_BINARY
#
# The document is the one the service serves at /openapi.json, as `todo-backend openapi` prints
# it. Both tools are pinned: openapi-spec-validator in a virtual environment of its own
# (requirements.txt), Redocly CLI through npm (package-lock.json).
# Last line: "openapi: N passed, M failed" (validators); exit status 1 if either fails.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 PATH_TO_TODO_BACKEND_BINARY" >&2
  exit 2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
source "$HERE/../../scripts/lib.sh"
require_service_bin "$1"
BIN=$(realpath "$1")
cd "$HERE"

VENV=$HERE/.venv
stamp_want="$(python3 --version 2>&1) $(sha256sum requirements.txt | cut -d' ' -f1)"
if [[ "$(cat "$VENV/.stamp" 2>/dev/null || true)" != "$stamp_want" ]]; then
  echo "# installing openapi-spec-validator into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r requirements.txt
  echo "$stamp_want" >"$VENV/.stamp"
fi
npm_ci_once openapi

document=$(mktemp --suffix=.json)
trap 'rm -f "$document"' EXIT
"$BIN" openapi >"$document"

passed=0 failed=0
echo "# openapi-spec-validator $("$VENV/bin/pip" show openapi-spec-validator | sed -n 's/^Version: //p')"
if "$VENV/bin/openapi-spec-validator" "$document"; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
fi
echo "# Redocly CLI $(npx --no-install redocly --version 2>/dev/null | tail -n 1), recommended rules"
# Warnings are printed; errors fail.
if REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
  npx --no-install redocly lint "$document" --config redocly.yaml --format=stylish; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
fi
echo "openapi: $passed passed, $failed failed"
((failed == 0))
