#!/usr/bin/env bash
# make dist: dist/xferproxy_<version>_amd64.deb and dist/xferproxy-<version>-1.x86_64.rpm around
# dist/xferproxy (built first by make bin). Both install the same tree (packaging/):
#   /usr/bin/xferproxy                       the single file
#   /usr/lib/systemd/system/xferproxy-{dnat,forward}.service
#   /etc/sudoers.d/xferproxy                 checked with visudo on install
#   /etc/xferproxy/aspera.conf               a config file, never overwritten on upgrade
#   /usr/share/doc/xferproxy/                docs and the sshd_config example (not enabled)
# and run packaging/scripts/*.sh to create the group and directories at install.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$root/deno.json")"
[ -x "$root/dist/xferproxy" ] || { echo "build-packages: run make bin first" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The installed tree, shared by both formats.
tree="$work/tree"
install -D -m 755 "$root/dist/xferproxy" "$tree/usr/bin/xferproxy"
for unit in xferproxy-dnat xferproxy-forward; do
  install -D -m 644 "$root/packaging/systemd/$unit.service" "$tree/usr/lib/systemd/system/$unit.service"
done
install -D -m 440 "$root/packaging/sudoers" "$tree/etc/sudoers.d/xferproxy"
install -D -m 644 "$root/packaging/aspera.conf" "$tree/etc/xferproxy/aspera.conf"
install -D -m 644 "$root/packaging/sshd_config.example" "$tree/usr/share/doc/xferproxy/sshd_config.example"
for doc in README.md docs/*.md; do install -m 644 "$root/$doc" "$tree/usr/share/doc/xferproxy/"; done
install -m 644 "$root/examples/aspera.conf" "$tree/usr/share/doc/xferproxy/aspera.conf.example"
script() { printf '#!/bin/sh\n'; cat "$@"; }

# .deb
deb="$work/deb"
cp -a "$tree" "$deb"
mkdir -p "$deb/DEBIAN"
cat >"$deb/DEBIAN/control" <<CONTROL
Package: xferproxy
Version: $version
Architecture: amd64
Maintainer: xferproxy maintainers <maintainers@users.noreply.github.com>
Depends: openssh-client, openssh-server, sudo, iptables | nftables, conntrack, iproute2, procps
Recommends: libnftables1, openssl
Section: net
Priority: optional
Installed-Size: $(du -sk "$tree" | cut -f1)
Description: open DMZ proxy for SSH-negotiated high-speed file transfers
 Reverse sessions (partners outside reach servers inside) are decided by
 xferproxy and handed to OpenSSH's ssh; FASP UDP is forwarded by kernel DNAT.
 A forward daemon lets inside users reach outside servers. Reads IBM Aspera
 Proxy's aspera.conf.
CONTROL
printf '/etc/xferproxy/aspera.conf\n/etc/sudoers.d/xferproxy\n' >"$deb/DEBIAN/conffiles"
{ script; echo 'if [ "$1" = configure ]; then'; cat "$root/packaging/scripts/setup.sh"; echo 'fi'; } >"$deb/DEBIAN/postinst"
{ script; echo 'if [ "$1" = remove ] || [ "$1" = deconfigure ]; then'; cat "$root/packaging/scripts/stop.sh"; echo 'fi'; } >"$deb/DEBIAN/prerm"
{
  script
  echo 'if [ "$1" = remove ] || [ "$1" = purge ]; then rm -rf /var/cache/xferproxy; fi'
  echo 'if [ "$1" = purge ]; then'; cat "$root/packaging/scripts/purge.sh"; echo 'fi'
} >"$deb/DEBIAN/postrm"
chmod 755 "$deb/DEBIAN/postinst" "$deb/DEBIAN/prerm" "$deb/DEBIAN/postrm"
debfile="$root/dist/xferproxy_${version}_amd64.deb"
dpkg-deb --root-owner-group -Zgzip --build "$deb" "$debfile" >/dev/null

# .rpm
rpmtop="$work/rpm"
mkdir -p "$rpmtop"/{BUILD,RPMS,SPECS,SOURCES,SRPMS,BUILDROOT}
{
  cat <<SPEC
Name: xferproxy
Version: $version
Release: 1
Summary: Open DMZ proxy for SSH-negotiated high-speed file transfers
License: NOASSERTION
BuildArch: x86_64
Requires: openssh-clients, openssh-server, sudo, (iptables or nftables), conntrack-tools, iproute, procps-ng
Recommends: nftables, openssl
AutoReqProv: no
%description
Reverse sessions are decided by xferproxy and handed to OpenSSH's ssh; FASP UDP
is forwarded by kernel DNAT. A forward daemon lets inside users reach outside
servers. Reads IBM Aspera Proxy's aspera.conf.
%define __strip /bin/true
%define __brp_strip /bin/true
%define _build_id_links none
%install
cp -a $tree/. %{buildroot}/
%files
%attr(0755,root,root) /usr/bin/xferproxy
%attr(0644,root,root) /usr/lib/systemd/system/xferproxy-dnat.service
%attr(0644,root,root) /usr/lib/systemd/system/xferproxy-forward.service
%config(noreplace) %attr(0440,root,root) /etc/sudoers.d/xferproxy
%dir %attr(0755,root,root) /etc/xferproxy
%config(noreplace) %attr(0644,root,root) /etc/xferproxy/aspera.conf
%doc %attr(0644,root,root) /usr/share/doc/xferproxy/*
%post
SPEC
  cat "$root/packaging/scripts/setup.sh"
  echo '%preun'
  echo 'if [ "$1" = 0 ]; then'; cat "$root/packaging/scripts/stop.sh"; echo 'fi'
  echo '%postun'
  echo 'if [ "$1" = 0 ]; then rm -rf /var/cache/xferproxy /var/lib/xferproxy; fi'
} >"$rpmtop/SPECS/xferproxy.spec"
rpmbuild --quiet -bb --define "_topdir $rpmtop" --define "_binary_payload w6.gzdio" \
  "$rpmtop/SPECS/xferproxy.spec" >/dev/null 2>"$work/rpmbuild.log" ||
  { cat "$work/rpmbuild.log" >&2; exit 1; }
rpmfile="$root/dist/xferproxy-${version}-1.x86_64.rpm"
cp "$rpmtop/RPMS/x86_64/xferproxy-${version}-1.x86_64.rpm" "$rpmfile"
echo "Built $(basename "$debfile") and $(basename "$rpmfile")"
