#!/bin/sh
# xferproxy @VERSION@: one self-contained file for x86_64 glibc Linux (Debian 11+, RHEL 8+).
# Its tail is a gzip'd tar of the Deno runtime, the bundled program and its npm packages. The
# first run unpacks it, verified against the SHA-256 below, into a directory only its owner can
# write; later runs start from there.
#   root:        /var/cache/xferproxy/<sha256>, shared read-only with every user, and root's own
#                Deno caches in it (deno_dir): a few shell tests at each start. Unpacking, root
#                also seals a copy of those caches read-only for the other users (sharedcache).
#   other users: that directory when root has unpacked it (a few shell tests, nothing in /tmp,
#                and root's sealed caches, which no user can change);
#                otherwise a private copy under /tmp, verified file by file at every start
#                (about 0.3 s), because a directory left by a removed account with the same uid
#                is theirs too. There they use no cache: one they could not verify could hold any
#                compiled code, and V8 checks little more than the source's length.
# Permissions per mode come from deno.json's "xferproxy" set, as with the compiled binary.
set -eu
XP_SHA256=@SHA256@
XP_TREE=@TREE@
XP_OFFSET=@OFFSET@
case "$0" in /*) self="$0" ;; *) self="$PWD/$0" ;; esac
uid=
while read -r key value rest; do
  if [ "$key" = "Uid:" ]; then uid=$value; break; fi
done </proc/self/status

die() { echo "xferproxy: $*" >&2; exit 1; }

# tree_sum DIR: one SHA-256 over every entry's type, mode, path and link target, and every file's
# content (the marker .ok aside). make dist records the payload's, so the run can check a copy.
@TREE_SUM@

# Removes directories of ours, including the read-only sharedcache/ inside a runtime.
remove() {
  chmod -R u+rwX "$@" 2>/dev/null || true
  rm -rf "$@"
}

unpack() { # $1: parent directory (ours, not writable by others)
  work="$1/.unpack-$$"
  remove "$work"
  mkdir -m 700 "$work"
  tail -c +"$XP_OFFSET" "$self" >"$work/payload"
  sum=$(sha256sum "$work/payload") || die "cannot checksum the payload"
  [ "${sum%% *}" = "$XP_SHA256" ] || { remove "$work"; die "$self is damaged (payload checksum mismatch): copy it again"; }
  mkdir "$work/runtime"
  # The archive's modes exactly, whatever the caller's umask: a private copy is checked with them.
  # The caller's own files: root under a unit without CAP_CHOWN (the DNAT service) can unpack too.
  (umask 022 && tar --no-same-owner -xzf "$work/payload" -C "$work/runtime") ||
    { remove "$work"; die "cannot unpack into $1"; }
  echo "$XP_SHA256" >"$work/runtime/.ok"
  [ "$uid" = 0 ] && chmod 755 "$work/runtime"
  remove "$1/$XP_SHA256" || die "cannot replace $1/$XP_SHA256"
  mv "$work/runtime" "$1/$XP_SHA256"
  remove "$work"
  fresh=1
  # Other versions' runtimes, once unpacked over a day ago: one unpacked more recently may be in
  # use (two versions installed side by side, a test run). A start of a removed one re-unpacks.
  for old in "$1"/????????????????????????????????????????????????????????????????; do
    [ "$old" != "$1/$XP_SHA256" ] && [ -d "$old" ] || continue
    [ -z "$(find "$old/.ok" -mmin -1440 2>/dev/null)" ] || continue
    remove "$old" 2>/dev/null || true
  done
}

# A private directory under /tmp: the first /tmp/xferproxy-<uid>[.*] that is a directory of ours
# (not a symlink), else a new one. Another user's file there changes the name, never the outcome.
private_dir() {
  for candidate in "/tmp/xferproxy-$uid" "/tmp/xferproxy-$uid".*; do
    if [ -d "$candidate" ] && [ ! -L "$candidate" ] && [ -O "$candidate" ]; then
      private=$candidate
      return
    fi
  done
  private="/tmp/xferproxy-$uid"
  if [ -e "$private" ] || [ -L "$private" ] || ! mkdir -m 700 "$private" 2>/dev/null; then
    private=$(mktemp -d "/tmp/xferproxy-$uid.XXXXXXXXXX") || die "cannot create a private directory in /tmp"
  fi
}

shared=/var/cache/xferproxy
if [ "$uid" = 0 ]; then
  if [ ! -f "$shared/$XP_SHA256/.ok" ]; then
    mkdir -p -m 755 "$shared"
    unpack "$shared"
  fi
  dir="$shared/$XP_SHA256"
  cache="$dir/deno_dir"
elif [ -f "$shared/$XP_SHA256/.ok" ]; then
  # Root's copy: only root writes /var/cache/xferproxy. Nothing of this user's is read.
  dir="$shared/$XP_SHA256"
  cache="$dir/sharedcache"
  [ -d "$cache" ] || cache="$dir/nocache"
else
  private_dir
  # Ours now, whatever mode a removed account left it with.
  chmod 700 "$private"
  dir="$private/$XP_SHA256"
  if [ ! -d "$dir" ] || [ "$(tree_sum "$dir")" != "$XP_TREE" ]; then
    unpack "$private"
    remove "$private/deno_dir" # the code cache of earlier versions, never read again
    [ "$(tree_sum "$dir")" = "$XP_TREE" ] || die "cannot verify the runtime unpacked into $dir"
  fi
  cache="$dir/nocache"
fi

# Nothing from the environment may steer the runtime: part of a reverse session's environment
# comes from the SSH client.
unset DENO_AUTH_TOKENS DENO_CERT DENO_TLS_CA_STORE DENO_V8_FLAGS DENO_JOBS DENO_NO_PROMPT \
  DENO_SERVE_ADDRESS NODE_OPTIONS NODE_EXTRA_CA_CERTS NODE_PATH NPM_CONFIG_REGISTRY
# nocache/ holds Deno's cache databases as empty read-only files (part of the verified payload):
# Deno cannot open them for writing and keeps its caches in memory, silently.
export DENO_DIR="$cache" DENO_NO_UPDATE_CHECK=1
# The one command line: "launch exec …" replaces this shell, "launch command …" returns.
# A reverse session starts as the session client (session, src/native/session_client.c): while
# the DNAT service decides it, no Deno runtime starts at all. Otherwise the client runs the Deno
# line it is given, and the program decides the session itself.
launch() {
  how=$1
  shift
  v8=--max-semi-space-size=1
  # The DNAT service lives for months and decides sessions in bursts: a heap that favours size
  # over speed (left to grow, garbage had doubled it under 200 sessions; docs/dnat.md).
  [ "${1:-} ${2:-}" = "dnat serve" ] && v8="$v8,--optimize-for-size"
  n=$#
  set -- "$@" "$dir/deno" run --quiet --no-prompt --cached-only --frozen \
    "--v8-flags=$v8" \
    --config "$dir/deno.json" -P=xferproxy "$dir/app/main.js" "--launcher=$self" "$@"
  if [ "${1:-}" = reverse ]; then
    # The client's arguments: how many of the session's come first, then the Deno line.
    $how "$dir/session" "$n" "$@"
  else
    shift "$n"
    $how "$@"
  fi
}
# Root's caches, sealed for the other users: copied, their logs folded in by seal_cache.js (then
# Deno opens them read-only instead of falling back to caches in memory), made read-only, and put
# in place at once. Without it, other users run without a cache.
seal() {
  work="$dir/.sharedcache-$$"
  remove "$work"
  mkdir -m 755 "$work"
  for db in "$dir/deno_dir"/*; do
    case "$db" in *-shm) continue ;; esac
    [ -f "$db" ] && cp "$db" "$work/"
  done
  if "$dir/deno" run --quiet --no-prompt --no-config --allow-read="$work" --allow-write="$work" \
    "$dir/seal_cache.js" "$work" >/dev/null 2>&1; then
    chmod 444 "$work"/*
    chmod 555 "$work"
    remove "$dir/sharedcache"
    mv "$work" "$dir/sharedcache"
  else
    remove "$work"
  fi
}
if [ "$uid" = 0 ] && [ -n "${fresh:-}" ]; then
  # Fill root's caches with every module of the program (warm_cache.js imports each chunk, runs
  # no mode), then seal a copy for the other users.
  "$dir/deno" run --quiet --no-prompt --cached-only --frozen --config "$dir/deno.json" \
    -P=xferproxy "$dir/warm_cache.js" >/dev/null 2>&1 || true
  seal
fi
launch exec "$@"
