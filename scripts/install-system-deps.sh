#!/usr/bin/env bash
# The Debian packages the end-to-end tests, the demo and the benchmarks need.
# As root: installs what is missing with apt-get. Otherwise: prints exactly
# what is missing and how to install it, and fails.
set -euo pipefail

# command → Debian package
declare -A need=(
  [iptables]=iptables [iptables-restore]=iptables [nft]=nftables [conntrack]=conntrack
  [ip]=iproute2 [ps]=procps [sysctl]=procps [sshd]=openssh-server [ssh]=openssh-client [scp]=openssh-client
  [sftp]=openssh-client [ssh-keygen]=openssh-client [sudo]=sudo [rsync]=rsync
  [iperf3]=iperf3 [logger]=bsdutils [curl]=curl [python3]=python3
  [openssl]=openssl [dpkg-deb]=dpkg [rpmbuild]=rpm [rpm]=rpm [rpm2cpio]=rpm2cpio [cpio]=cpio
  [lintian]=lintian [rpmlint]=rpmlint [logrotate]=logrotate [systemd-analyze]=systemd
  [man]=man-db [script]=bsdutils
  # Login shells an internal account may have: the command policy is tested against each.
  [tcsh]=tcsh [bsd-csh]=csh [zsh]=zsh
)
missing=()
for cmd in "${!need[@]}"; do
  PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
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
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $packages >/dev/null
