#!/usr/bin/env bash
# make dist / make bin: dist/xferproxy, one self-contained file.
#
# With a denort runtime (DENORT_BIN, or one deno compile can download) it is the real
# `deno compile` output. Where neither exists (no registry ships denort), it is a shell header
# followed by a gzip'd tar of what the registries do ship: the Deno binary (npm @deno/linux-x64-glibc),
# the bundled program (dist/app, one chunk per mode) and its npm packages (ssh2 stays a package:
# its poly1305 loader needs __dirname) and the session client, built here from
# src/native/session_client.c. scripts/dist/header.sh unpacks it once, verified.
# --strict: fail unless deno compile works.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
deno="$root/.tools/bin/deno"
out="$root/dist/xferproxy"
version="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$root/deno.json")"
strict=false
[ "${1:-}" = "--strict" ] && strict=true
mkdir -p "$root/dist"
rm -f "$out" "$out.tmp"*

log="$(mktemp)"
stage="$(mktemp -d)"
trap 'chmod -R u+w "$stage" 2>/dev/null; rm -rf "$log" "$stage" "$stage.tgz"' EXIT
if [ -n "${DENORT_BIN:-}" ] || $strict; then
  # --frozen: built from exactly what deno.lock pins.
  if (cd "$root" && "$deno" compile --quiet --frozen --no-prompt -P=xferproxy \
        --v8-flags=--max-semi-space-size=1 --include deno.json --output "$out" main.ts) >"$log" 2>&1; then
    echo "Built dist/xferproxy: compiled binary ($(du -h "$out" | cut -f1))"
    exit 0
  fi
  rm -f "$out" "$out.tmp"*
  if $strict; then
    echo "make build: deno compile could not build dist/xferproxy: $(grep -m1 -iE 'error|caused' "$log" || head -n1 "$log")" >&2
    echo "Set DENORT_BIN to a denort $("$deno" --version | head -n1 | awk '{print $2}') binary, or use 'make dist'." >&2
    exit 1
  fi
fi

# One module graph per mode instead of ~100 source files: a reverse session deciding itself, or a
# compiled binary's asking the DNAT service (main.ts loads only the light path for it), loads in
# about half the time.
rm -rf "$root/dist/app"
(cd "$root" && "$deno" bundle --quiet --frozen --platform deno --code-splitting \
  --external ssh2 --outdir dist/app main.ts)
[ -f "$root/dist/app/main.js" ] || { echo "build-dist: the bundle lacks app/main.js" >&2; exit 1; }
cp -a "$root/dist/app" "$stage/app"
cp -L "$deno" "$stage/deno"
# The session client (src/native/session_client.c), the first process of a reverse session:
# linked statically, so the one build runs on every glibc the payload's Deno runs on.
cc="${CC:-cc}"
command -v "$cc" >/dev/null ||
  { echo "build-dist: no C compiler ($cc) for the session client: install gcc and libc6-dev (Debian; 'make sysdeps' as root does) or gcc and glibc-static (RHEL)" >&2; exit 1; }
"$cc" -std=c11 -O2 -s -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion -Werror \
  -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE -static-pie \
  -o "$root/dist/xferproxy-session" "$root/src/native/session_client.c"
cp "$root/dist/xferproxy-session" "$stage/session"
cp "$root/deno.json" "$root/deno.lock" "$root/scripts/dist/seal_cache.js" \
  "$root/scripts/dist/warm_cache.js" "$stage/"
# The contents (node_modules may be a link to another checkout's).
mkdir "$stage/node_modules"
cp -a "$root/node_modules/." "$stage/node_modules/"
rm -f "$stage/node_modules/.xferproxy-deps"
chmod -R a+rX,go-w "$stage"
# nocache/: Deno's cache databases as empty read-only files, and the directories Deno makes in its
# DENO_DIR, empty: the DENO_DIR of users who may not use a cache. Deno cannot open the files for
# writing, keeps its caches in memory and says nothing (a directory it cannot create files in makes
# it complain on a terminal), and, finding its directories there, adds nothing: a private copy
# stays as verified. The names are the ones this Deno makes.
probe_dir="$(mktemp -d)"
DENO_DIR="$probe_dir" "$stage/deno" run --quiet --no-prompt --cached-only --frozen \
  --config "$stage/deno.json" -P=xferproxy "$stage/app/main.js" version >/dev/null
mkdir "$stage/nocache"
for entry in "$probe_dir"/*; do
  case "$entry" in *-wal | *-shm) continue ;; esac
  if [ -d "$entry" ]; then mkdir "$stage/nocache/$(basename "$entry")"
  elif [ -f "$entry" ]; then : >"$stage/nocache/$(basename "$entry")"
  fi
done
rm -rf "$probe_dir"
[ -n "$(find "$stage/nocache" -type f)" ] || { echo "build-dist: Deno opened no cache database" >&2; exit 1; }
find "$stage/nocache" -type f -exec chmod 444 {} +
# tree_sum's records are unambiguous only without blanks in names and link targets.
if (cd "$stage" && find . \( -name '*[[:space:]]*' -o -lname '*[[:space:]]*' \) -print | grep -q .); then
  echo "build-dist: a file name or link target in the payload has a blank" >&2
  exit 1
fi
# A reproducible archive: fixed owner, order and times, so the same sources give the same file.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$stage" -cf - . |
  gzip -n -6 >"$stage.tgz"
sha="$(sha256sum "$stage.tgz" | cut -d' ' -f1)"
# The unpacked tree's sum, taken from an unpacking as the header does it: a private copy is
# checked against it at every start.
. "$root/scripts/dist/tree_sum.sh"
check_dir="$(mktemp -d)"
(umask 022 && tar -xzf "$stage.tgz" -C "$check_dir")
tree="$(tree_sum "$check_dir")"
chmod -R u+w "$check_dir"
rm -rf "$check_dir"
[ "$tree" = "$(tree_sum "$stage")" ] || { echo "build-dist: the unpacked payload differs from what was packed" >&2; exit 1; }
header="$(sed -e "s/@VERSION@/$version/" -e "s/@SHA256@/$sha/" -e "s/@TREE@/$tree/" \
  -e "/^@TREE_SUM@\$/{r $root/scripts/dist/tree_sum.sh" -e "d}" "$root/scripts/dist/header.sh")"
# The payload starts right after the header; its offset is written into the header itself, so
# the offset's own digits are fixed at 12.
probe="$(printf '%s\n' "${header/@OFFSET@/000000000000}" | wc -c)"
offset="$(printf '%012d' $((probe + 1)))"
printf '%s\n' "${header/@OFFSET@/$offset}" >"$out.tmp"
cat "$stage.tgz" >>"$out.tmp"
rm -f "$stage.tgz"
chmod 755 "$out.tmp"
mv "$out.tmp" "$out"
echo "Built dist/xferproxy: one self-contained file ($(du -h "$out" | cut -f1), payload sha256 ${sha:0:12}…)"
