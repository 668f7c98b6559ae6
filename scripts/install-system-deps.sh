#!/usr/bin/env bash
# The Debian packages the end-to-end tests, the demo and the benchmarks need.
# As root: installs what is missing with apt-get. Otherwise: prints exactly
# what is missing and how to install it, and fails.
set -euo pipefail

# command (or a file's absolute path) → Debian package
declare -A need=(
  [iptables]=iptables [iptables-restore]=iptables [nft]=nftables [conntrack]=conntrack
  [ip]=iproute2 [ps]=procps [sysctl]=procps [sshd]=openssh-server [ssh]=openssh-client [scp]=openssh-client
  [sftp]=openssh-client [ssh-keygen]=openssh-client [sudo]=sudo [rsync]=rsync
  [iperf3]=iperf3 [logger]=bsdutils [curl]=curl [python3]=python3
  [openssl]=openssl [dpkg-deb]=dpkg [rpmbuild]=rpm [rpm]=rpm [rpm2cpio]=rpm2cpio [cpio]=cpio
  [lintian]=lintian [rpmlint]=rpmlint [logrotate]=logrotate [systemd-analyze]=systemd
  [man]=man-db [script]=bsdutils [keepalived]=keepalived
  # make bin builds the session client (src/native/session_client.c), linked statically.
  [cc]=gcc [/usr/lib/x86_64-linux-gnu/libc.a]=libc6-dev
  # Login shells an internal account may have: the command policy is tested against each.
  [tcsh]=tcsh [bsd-csh]=csh [zsh]=zsh
)
missing=()
for cmd in "${!need[@]}"; do
  if [[ $cmd == /* ]]; then
    [ -e "$cmd" ] || missing+=("${need[$cmd]}")
  else
    PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
if [ "$(id -u)" -ne 0 ]; then
  echo "Missing Debian packages: $packages" >&2
  echo "Install them as root: apt-get install -y $packages" >&2
  exit 1
fi
echo "Installing Debian packages: $packages"
export DEBIAN_FRONTEND=noninteractive
# keepalived's package would start and enable a host-wide keepalived (VRRP on the host's own
# interfaces): the tests run their own, each in its namespace. A policy-rc.d for the install
# (unless the host has one) refuses to start it; it is disabled afterwards.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  trap 'rm -f "$policy"' EXIT
  printf '#!/bin/sh\n[ "$1" = keepalived ] && exit 101\nexit 0\n' >"$policy"
  chmod 755 "$policy"
fi
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $packages >/dev/null
if [[ " $packages " == *" keepalived "* ]] && command -v systemctl >/dev/null; then
  systemctl disable keepalived.service >/dev/null 2>&1 || true
fi
