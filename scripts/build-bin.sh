#!/usr/bin/env bash
# make bin / make build: dist/xferproxy is the compiled binary when
# `deno compile` can get its runtime (it honours DENORT_BIN), otherwise a
# launcher script that runs the bundled program (dist/app, one chunk per
# mode, so a reverse session loads only its own code) with the same
# permission set.
# --strict (make build): fail instead of falling back to the launcher.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
deno="$root/.tools/bin/deno"
out="$root/dist/xferproxy"
strict=false
[ "${1:-}" = "--strict" ] && strict=true
mkdir -p "$root/dist"
rm -f "$out" "$out.tmp"*

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# --frozen: the binary is built from exactly what deno.lock pins.
if (cd "$root" && "$deno" compile --quiet --frozen --no-prompt -P=xferproxy \
      --v8-flags=--max-semi-space-size=1 --include deno.json --output "$out" main.ts) >"$log" 2>&1; then
  echo "Built dist/xferproxy: compiled binary ($(du -h "$out" | cut -f1))"
  exit 0
fi
rm -f "$out" "$out.tmp"*
reason="$(grep -m1 -iE 'error|caused' "$log" || head -n1 "$log")"
if $strict; then
  echo "make build: deno compile could not build dist/xferproxy: $reason" >&2
  echo "Set DENORT_BIN to a denort $("$deno" --version | head -n1 | awk '{print $2}') binary, or use 'make bin' for the launcher." >&2
  exit 1
fi
# One module graph per mode instead of ~100 source files: a reverse session, started once per
# SSH session, loads in about half the time. ssh2 (check upstreams only) stays a package import.
rm -rf "$root/dist/app"
(cd "$root" && "$deno" bundle --quiet --frozen --platform deno --code-splitting \
  --external ssh2 --outdir dist/app main.ts)
cat >"$out" <<LAUNCHER
#!/bin/sh
# xferproxy launcher, written by 'make bin' because deno compile could not
# fetch its runtime. It runs the bundled program with the permission set of
# deno.json ("permissions.xferproxy"), exactly as the compiled binary would.
# --quiet keeps Deno's own notices off stderr: in reverse mode that is the
# SSH client's stream.
# --launcher=PATH: the path sudoers names when a session runs "sudo xferproxy dnat"; an
# argument, not an environment variable, which an SSH client could set.
# --max-semi-space-size=1: V8's young generation grows to 16 MiB by default; the long-lived
# DNAT service never needs that much (measured: 95 -> 64 MiB with 200 sessions), and short
# sessions start no slower.
case "\$0" in /*) self="\$0" ;; *) self="\$PWD/\$0" ;; esac
export DENO_NO_UPDATE_CHECK=1
exec "$root/.tools/bin/deno" run --quiet --no-prompt --cached-only --frozen \\
  --v8-flags=--max-semi-space-size=1 \\
  --config "$root/deno.json" -P=xferproxy "$root/dist/app/main.js" "--launcher=\$self" "\$@"
LAUNCHER
chmod 755 "$out"
chmod -R a+rX "$root/dist"
echo "Built dist/xferproxy: launcher script over dist/app (deno compile could not get its runtime: set DENORT_BIN for a compiled binary)"
