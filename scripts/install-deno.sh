#!/usr/bin/env bash
# Provides .tools/bin/deno at the pinned version: a matching `deno` on PATH is
# linked, otherwise the npm package `deno` is installed into .tools/ (ignored by git).
set -euo pipefail
version="${1:?usage: install-deno.sh VERSION}"
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools"
mkdir -p "$tools/bin"

have_version() { "$1" --version 2>/dev/null | head -n1 | awk '{print $2}'; }

if [ -x "$tools/bin/deno" ] && [ "$(have_version "$tools/bin/deno")" = "$version" ]; then
  exit 0
fi
if command -v deno >/dev/null 2>&1 && [ "$(have_version "$(command -v deno)")" = "$version" ]; then
  ln -sf "$(command -v deno)" "$tools/bin/deno"
  echo "deno $version: using $(command -v deno)"
  exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "install-deno: npm is needed to install deno $version (apt-get install npm)" >&2; exit 1; }
echo "deno $version: installing the npm package into .tools/"
# The package's postinstall only swaps a JS shim for the native binary; we link the binary ourselves.
npm install --prefix "$tools" --no-save --no-audit --no-fund --no-package-lock --ignore-scripts --loglevel=error "deno@$version" >&2
native="$(ls "$tools"/node_modules/@deno/*/deno 2>/dev/null | head -n1 || true)"
[ -n "$native" ] || { echo "install-deno: the deno package has no native binary for $(uname -m) $(uname -s)" >&2; exit 1; }
ln -sf "$native" "$tools/bin/deno"
[ "$(have_version "$tools/bin/deno")" = "$version" ] || { echo "install-deno: installed deno is not $version" >&2; exit 1; }
