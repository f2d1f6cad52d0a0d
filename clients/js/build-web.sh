#!/usr/bin/env bash
# Builds this package for the web client (src/main/resources/web): the same sources as
# `npm run build`, compiled by tsc to plain ES modules, without declarations or source maps,
# into the folder given. The node's Maven build runs it (generate-resources) and puts the
# modules at web/sdk/ in its jar, beside the page that imports them.
#
#   clients/js/build-web.sh OUTPUT_DIR
#
# Installs the dev dependencies (TypeScript) first when node_modules is missing or was
# installed from an older package-lock.json, as the tests do (parley.testing.Npm), and
# compiles only when a source is newer than what OUTPUT_DIR holds.
set -euo pipefail
out="${1:?usage: build-web.sh OUTPUT_DIR}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cd "$(dirname "$0")"

if ! command -v npm >/dev/null; then
  echo "build-web.sh: Node 20 and npm are needed to build the web client's modules (clients/js)" >&2
  exit 1
fi
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
if [[ -f $out/index.js && -z "$(find src tsconfig.json package-lock.json build-web.sh -newer "$out/index.js" -print -quit)" ]]; then
  exit 0
fi
# Afresh, so a module whose source was removed does not linger.
find "$out" -mindepth 1 -delete
node_modules/.bin/tsc -p tsconfig.json --outDir "$out" --declaration false --sourceMap false --noEmitOnError
