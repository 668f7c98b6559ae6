#!/bin/sh
# xferproxy @VERSION@: one self-contained file for x86_64 glibc Linux (Debian 11+, RHEL 8+).
# Its tail is a gzip'd tar of the Deno runtime, the bundled program and its npm packages. The
# first run unpacks it, verified against the SHA-256 below, into a directory only its owner can
# write; later runs start from there (a few shell tests).
#   root:        /var/cache/xferproxy/<sha256>, shared read-only with every user
#   other users: that directory when root has unpacked it, else /tmp/xferproxy-<uid>/<sha256>;
#                their V8 code cache in /tmp/xferproxy-<uid>/deno_dir (made 0700, owner checked)
# Permissions per mode come from deno.json's "xferproxy" set, as with the compiled binary.
set -eu
XP_SHA256=@SHA256@
XP_OFFSET=@OFFSET@
case "$0" in /*) self="$0" ;; *) self="$PWD/$0" ;; esac
uid=
while read -r key value rest; do
  if [ "$key" = "Uid:" ]; then uid=$value; break; fi
done </proc/self/status

die() { echo "xferproxy: $*" >&2; exit 1; }

unpack() { # $1: parent directory (ours, not writable by others); prints the runtime directory
  work="$1/.unpack-$$"
  rm -rf "$work"
  mkdir -m 700 "$work"
  tail -c +"$XP_OFFSET" "$self" >"$work/payload"
  sum=$(sha256sum "$work/payload") || die "cannot checksum the payload"
  [ "${sum%% *}" = "$XP_SHA256" ] || { rm -rf "$work"; die "$self is damaged (payload checksum mismatch): copy it again"; }
  mkdir "$work/runtime"
  tar -xzf "$work/payload" -C "$work/runtime" || { rm -rf "$work"; die "cannot unpack into $1"; }
  echo "$XP_SHA256" >"$work/runtime/.ok"
  chmod -R go-w "$work/runtime"
  [ "$uid" = 0 ] && chmod 755 "$work/runtime"
  rm -rf "$1/$XP_SHA256"
  mv "$work/runtime" "$1/$XP_SHA256"
  rm -rf "$work"
  fresh=1
  # Other versions' runtimes, once unpacked over a day ago: one unpacked more recently may be in
  # use (two versions installed side by side, a test run). A start of a removed one re-unpacks.
  for old in "$1"/????????????????????????????????????????????????????????????????; do
    [ "$old" != "$1/$XP_SHA256" ] && [ -d "$old" ] || continue
    [ -z "$(find "$old/.ok" -mmin -1440 2>/dev/null)" ] || continue
    rm -rf "$old" 2>/dev/null || true
  done
}

shared=/var/cache/xferproxy
if [ "$uid" = 0 ]; then
  if [ ! -f "$shared/$XP_SHA256/.ok" ]; then
    mkdir -p -m 755 "$shared"
    unpack "$shared"
  fi
  dir="$shared/$XP_SHA256"
  cache="$dir/deno_dir"
else
  # Each user's own directory: V8's code cache (a session then skips compiling), and the runtime
  # itself when root has not unpacked it for everyone.
  private="/tmp/xferproxy-$uid"
  if [ ! -e "$private" ] && [ ! -L "$private" ]; then
    mkdir -m 700 "$private" || die "cannot create $private"
  fi
  # Someone else's directory or a symlink: never run code from it. (Made here with mode 0700,
  # only its owner can open it to others: no fork to read the mode at every start.)
  if [ -L "$private" ] || [ ! -O "$private" ]; then
    die "$private is not a private directory of uid $uid: remove it, or run xferproxy once as root"
  fi
  if [ -f "$shared/$XP_SHA256/.ok" ]; then
    dir="$shared/$XP_SHA256"
  else
    [ -f "$private/$XP_SHA256/.ok" ] || unpack "$private"
    dir="$private/$XP_SHA256"
  fi
  cache="$private/deno_dir"
fi

# Nothing from the environment may steer the runtime: part of a reverse session's environment
# comes from the SSH client.
unset DENO_AUTH_TOKENS DENO_CERT DENO_TLS_CA_STORE DENO_V8_FLAGS DENO_JOBS DENO_NO_PROMPT \
  DENO_SERVE_ADDRESS NODE_OPTIONS NODE_EXTRA_CA_CERTS NODE_PATH NPM_CONFIG_REGISTRY
export DENO_DIR="$cache" DENO_NO_UPDATE_CHECK=1
# The one command line: "launch exec …" replaces this shell, "launch command …" returns.
launch() {
  how=$1
  shift
  $how "$dir/deno" run --quiet --no-prompt --cached-only --frozen \
    --v8-flags=--max-semi-space-size=1 \
    --config "$dir/deno.json" -P=xferproxy "$dir/app/main.js" "--launcher=$self" "$@"
}
if [ -n "${fresh:-}" ]; then
  # Fill V8's code cache with the start-up code every mode shares (~15 ms at each later start).
  launch command check defaults >/dev/null 2>&1 || true
fi
launch exec "$@"
