#!/usr/bin/env bash
# make demo: validate the bundled example configuration with the built
# binary, then run it for real in a namespace testbed (needs root).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/dist/xferproxy"

echo "== $bin version"
"$bin" version
echo
echo "== $bin check config --config examples/aspera.conf"
"$bin" check config --config "$root/examples/aspera.conf"
exec "$root/.tools/bin/deno" run --quiet --cached-only --config "$root/deno.json" -A "$root/scripts/demo.ts"
