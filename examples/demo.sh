#!/usr/bin/env bash
# make demo: validate the bundled example configuration with the built binary.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/dist/xferproxy"
conf="$root/examples/aspera.conf"

echo "== $bin version"
"$bin" version
echo
echo "== $bin check config --config examples/aspera.conf"
"$bin" check config --config "$conf"
