#!/usr/bin/env bash
# make dist: dist/xferproxy_<version>_amd64.deb and dist/xferproxy-<version>-1.x86_64.rpm around
# dist/xferproxy (built first by make bin). Both install the same tree (packaging/):
#   /usr/bin/xferproxy                          the single file
#   /usr/lib/systemd/system/xferproxy-{dnat,forward}.service   hardened units
#   /usr/lib/sysusers.d/xferproxy.conf          the group xferproxy
#   /usr/lib/sysctl.d/60-xferproxy.conf         net.ipv4.ip_forward = 1
#   /usr/lib/tmpfiles.d/xferproxy.conf          /run/xferproxy, the DNAT service's socket directory
#   /etc/sudoers.d/xferproxy                    checked with visudo on install
#   /etc/logrotate.d/xferproxy                  the daemons reopen their log on SIGHUP
#   /etc/xferproxy/aspera.conf                  a config file, never overwritten on upgrade
#   /usr/share/man/man1/xferproxy.1.gz and /usr/share/bash-completion/completions/xferproxy,
#                                               generated here from the table of modes
#   /usr/share/doc/xferproxy/                   docs, the sshd_config example (not enabled),
#                                               the changelog; the .deb's copyright file, the
#                                               .rpm's LICENSE in /usr/share/licenses/xferproxy
# and run packaging/scripts/*.sh: the group, directories, sudoers check, IP forwarding and the
# unpacked runtime at install. The .deb enables and starts the DNAT service (Debian's way); the
# .rpm owns its directories, creates the group before its files, and starts nothing (Red Hat's
# way: presets decide what is enabled).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$root/deno.json")"
[ -x "$root/dist/xferproxy" ] || { echo "build-packages: run make bin first" >&2; exit 1; }
pkg="$root/packaging"
# The changelog's newest entry must be this version: its date is the packages' date.
head -n1 "$pkg/changelog" | grep -q "^xferproxy ($version) " ||
  { echo "build-packages: packaging/changelog has no entry for $version at the top" >&2; exit 1; }
date_line="$(grep -m1 '^ -- ' "$pkg/changelog")"
release_date="$(date -u -d "${date_line##*>  }" +%Y-%m-%d)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The man page and the completion, from the table of modes (never stale: made for every build).
"$root/.tools/bin/deno" run --quiet --frozen --allow-write="$work" \
  "$root/scripts/gen-mode-docs.ts" "$work" "$release_date"

# The installed tree, shared by both formats.
tree="$work/tree"
install -D -m 755 "$root/dist/xferproxy" "$tree/usr/bin/xferproxy"
for unit in xferproxy-dnat xferproxy-forward; do
  install -D -m 644 "$pkg/systemd/$unit.service" "$tree/usr/lib/systemd/system/$unit.service"
done
install -D -m 644 "$pkg/sysusers.conf" "$tree/usr/lib/sysusers.d/xferproxy.conf"
install -D -m 644 "$pkg/sysctl.conf" "$tree/usr/lib/sysctl.d/60-xferproxy.conf"
install -D -m 644 "$pkg/tmpfiles.conf" "$tree/usr/lib/tmpfiles.d/xferproxy.conf"
install -D -m 440 "$pkg/sudoers" "$tree/etc/sudoers.d/xferproxy"
install -D -m 644 "$pkg/logrotate" "$tree/etc/logrotate.d/xferproxy"
install -D -m 644 "$pkg/aspera.conf" "$tree/etc/xferproxy/aspera.conf"
install -d -m 700 "$tree/etc/xferproxy/keys"
install -d -m 755 "$tree/var/lib/xferproxy" "$tree/var/cache/xferproxy"
install -d -m 2770 "$tree/var/lib/xferproxy/balancer" "$tree/var/log/xferproxy"
install -d -m 2750 "$tree/var/log/xferproxy/root"
install -D -m 644 "$work/xferproxy.1" "$tree/usr/share/man/man1/xferproxy.1"
gzip -9n "$tree/usr/share/man/man1/xferproxy.1"
install -D -m 644 "$work/xferproxy.bash" "$tree/usr/share/bash-completion/completions/xferproxy"
doc="$tree/usr/share/doc/xferproxy"
install -D -m 644 "$pkg/sshd_config.example" "$doc/sshd_config.example"
for file in README.md docs/*.md; do install -m 644 "$root/$file" "$doc/"; done
install -m 644 "$root/examples/aspera.conf" "$doc/aspera.conf.example"
# The same mtime for every file: the same sources give the same packages.
epoch="$(date -u -d "$release_date" +%s)"

# Maintainer scripts: packaging/scripts/*.sh, with the sysusers.d line spliced into group.sh.
script() { printf '#!/bin/sh\nset -e\n'; }
part() {
  if [ "$1" = group ]; then
    sed -e "/^@SYSUSERS@\$/{r $pkg/sysusers.conf" -e "d}" "$pkg/scripts/group.sh"
  else
    cat "$pkg/scripts/$1.sh"
  fi
}
UNITS="xferproxy-dnat.service xferproxy-forward.service"

# .deb
deb="$work/deb"
cp -a "$tree" "$deb"
rm -r "$deb/etc/xferproxy/keys" "$deb/var/lib/xferproxy" "$deb/var/log/xferproxy" \
  "$deb/var/cache/xferproxy" # made by postinst, with the group, once it exists
rmdir "$deb/var/lib" "$deb/var/log" "$deb/var/cache" "$deb/var"
install -m 644 "$pkg/copyright" "$deb/usr/share/doc/xferproxy/copyright"
gzip -9n <"$pkg/changelog" >"$deb/usr/share/doc/xferproxy/changelog.gz"
install -D -m 644 "$pkg/lintian-overrides" "$deb/usr/share/lintian/overrides/xferproxy"
mkdir -p "$deb/DEBIAN"
cat >"$deb/DEBIAN/control" <<CONTROL
Package: xferproxy
Version: $version
Architecture: amd64
Maintainer: xferproxy maintainers <maintainers@users.noreply.github.com>
Depends: openssh-client, openssh-server, sudo, iptables | nftables, conntrack, iproute2, procps
Recommends: libnftables1, openssl, logrotate
Section: net
Priority: optional
Installed-Size: $(du -sk "$deb" | cut -f1)
Description: open DMZ proxy for SSH-negotiated high-speed file transfers
 Reverse sessions (partners outside reach servers inside) are decided by
 xferproxy and handed to OpenSSH's ssh; FASP UDP is forwarded by kernel DNAT.
 A forward daemon lets inside users reach outside servers. Reads IBM Aspera
 Proxy's aspera.conf.
CONTROL
printf '%s\n' /etc/logrotate.d/xferproxy /etc/sudoers.d/xferproxy /etc/xferproxy/aspera.conf \
  >"$deb/DEBIAN/conffiles"
{
  script
  echo 'if [ "$1" = configure ]; then'
  part group
  part dirs
  part configure
  echo 'fi'
  # As dh_installsystemd writes it: the DNAT service enabled on first install, and (re)started.
  cat <<'SYSTEMD'
if [ "$1" = configure ] || [ "$1" = abort-upgrade ] || [ "$1" = abort-deconfigure ] || [ "$1" = abort-remove ]; then
  deb-systemd-helper unmask xferproxy-dnat.service >/dev/null || true
  if deb-systemd-helper --quiet was-enabled xferproxy-dnat.service; then
    deb-systemd-helper enable xferproxy-dnat.service >/dev/null || true
  else
    deb-systemd-helper update-state xferproxy-dnat.service >/dev/null || true
  fi
  deb-systemd-helper update-state xferproxy-forward.service >/dev/null || true
  if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
    deb-systemd-invoke restart xferproxy-dnat.service >/dev/null || true
    deb-systemd-invoke try-restart xferproxy-forward.service >/dev/null || true
  fi
fi
SYSTEMD
} >"$deb/DEBIAN/postinst"
{
  script
  echo 'if [ "$1" = remove ] || [ "$1" = deconfigure ]; then'
  echo "  if [ -d /run/systemd/system ]; then deb-systemd-invoke stop $UNITS >/dev/null || true; fi"
  part stop
  echo 'fi'
} >"$deb/DEBIAN/prerm"
{
  script
  echo 'if [ "$1" = remove ] || [ "$1" = purge ]; then rm -rf /var/cache/xferproxy; fi'
  echo 'if [ -d /run/systemd/system ]; then systemctl --system daemon-reload >/dev/null || true; fi'
  echo "if [ \"\$1\" = remove ] && command -v deb-systemd-helper >/dev/null; then deb-systemd-helper mask $UNITS >/dev/null || true; fi"
  echo 'if [ "$1" = purge ]; then'
  echo "  if command -v deb-systemd-helper >/dev/null; then deb-systemd-helper purge $UNITS >/dev/null || true; deb-systemd-helper unmask $UNITS >/dev/null || true; fi"
  part purge
  echo 'fi'
} >"$deb/DEBIAN/postrm"
chmod 755 "$deb/DEBIAN/postinst" "$deb/DEBIAN/prerm" "$deb/DEBIAN/postrm"
find "$deb" -exec touch -h -d "@$epoch" {} +
debfile="$root/dist/xferproxy_${version}_amd64.deb"
SOURCE_DATE_EPOCH="$epoch" dpkg-deb --root-owner-group -Zgzip --build "$deb" "$debfile" >/dev/null

# .rpm
rpmtop="$work/rpm"
mkdir -p "$rpmtop"/{BUILD,RPMS,SPECS,SOURCES,SRPMS,BUILDROOT}
install -D -m 644 "$root/LICENSE" "$tree/usr/share/licenses/xferproxy/LICENSE"
install -m 644 "$pkg/changelog" "$doc/changelog"
# packaging/changelog (Debian's format) as %changelog entries.
rpm_changelog() {
  local version="" lines=()
  while IFS= read -r line; do
    case "$line" in
      "xferproxy ("*) version="${line#xferproxy (}" version="${version%%)*}" lines=() ;;
      "  * "*) lines+=("- ${line#  \* }") ;;
      "    "*) lines[-1]+=" ${line#    }" ;;
      " -- "*)
        local who="${line#  -- }" when="${line##*>  }"
        who="${line# -- }" who="${who%>*}>"
        echo "* $(date -u -d "$when" '+%a %b %d %Y') $who - $version-1"
        printf '%s\n' "${lines[@]}" ""
        ;;
    esac
  done <"$pkg/changelog"
}
{
  cat <<SPEC
Name: xferproxy
Version: $version
Release: 1
Summary: Open DMZ proxy for SSH-negotiated high-speed file transfers
License: Apache-2.0 AND MIT AND BSD-3-Clause AND Unlicense
Group: Applications/Internet
Packager: xferproxy maintainers <maintainers@users.noreply.github.com>
BuildArch: x86_64
Requires: openssh-clients, openssh-server, sudo, conntrack-tools, iproute, procps-ng
Requires: (iptables or nftables)
Requires(pre): (systemd or shadow-utils)
Recommends: nftables, openssl, logrotate
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
%attr(0644,root,root) /usr/lib/sysusers.d/xferproxy.conf
%attr(0644,root,root) /usr/lib/tmpfiles.d/xferproxy.conf
%attr(0644,root,root) /usr/lib/sysctl.d/60-xferproxy.conf
%config(noreplace) %attr(0440,root,root) /etc/sudoers.d/xferproxy
%config(noreplace) %attr(0644,root,root) /etc/logrotate.d/xferproxy
%dir %attr(0755,root,root) /etc/xferproxy
%dir %attr(0700,root,root) /etc/xferproxy/keys
%config(noreplace) %attr(0644,root,root) /etc/xferproxy/aspera.conf
%dir %attr(0755,root,root) /var/lib/xferproxy
%dir %attr(2770,root,xferproxy) /var/lib/xferproxy/balancer
%dir %attr(2770,root,xferproxy) /var/log/xferproxy
%dir %attr(2750,root,xferproxy) /var/log/xferproxy/root
%dir %attr(0755,root,root) /var/cache/xferproxy
%attr(0644,root,root) /usr/share/man/man1/xferproxy.1.gz
%attr(0644,root,root) /usr/share/bash-completion/completions/xferproxy
%dir %attr(0755,root,root) /usr/share/doc/xferproxy
%doc %attr(0644,root,root) /usr/share/doc/xferproxy/*
%dir %attr(0755,root,root) /usr/share/licenses/xferproxy
%license %attr(0644,root,root) /usr/share/licenses/xferproxy/LICENSE
%pre
SPEC
  part group
  echo '%post'
  part configure
  echo "if [ \$1 -eq 1 ] && [ -x /usr/bin/systemctl ]; then systemctl --no-reload preset $UNITS >/dev/null 2>&1 || :; fi"
  echo '%preun'
  echo 'if [ $1 -eq 0 ]; then'
  echo "  if [ -x /usr/bin/systemctl ]; then systemctl --no-reload disable --now $UNITS >/dev/null 2>&1 || :; fi"
  part stop
  echo 'fi'
  echo '%postun'
  echo "if [ \$1 -ge 1 ] && [ -x /usr/bin/systemctl ]; then systemctl try-restart $UNITS >/dev/null 2>&1 || :; fi"
  echo 'if [ $1 -eq 0 ]; then rm -rf /var/cache/xferproxy /var/lib/xferproxy; fi'
  echo '%changelog'
  rpm_changelog
} >"$rpmtop/SPECS/xferproxy.spec"
find "$tree" -exec touch -h -d "@$epoch" {} +
SOURCE_DATE_EPOCH="$epoch" rpmbuild --quiet -bb --define "_topdir $rpmtop" \
  --define "_binary_payload w6.gzdio" --define "use_source_date_epoch_as_buildtime 1" \
  --define "clamp_mtime_to_source_date_epoch 1" \
  "$rpmtop/SPECS/xferproxy.spec" >/dev/null 2>"$work/rpmbuild.log" ||
  { cat "$work/rpmbuild.log" >&2; exit 1; }
rpmfile="$root/dist/xferproxy-${version}-1.x86_64.rpm"
cp "$rpmtop/RPMS/x86_64/xferproxy-${version}-1.x86_64.rpm" "$rpmfile"
echo "Built $(basename "$debfile") and $(basename "$rpmfile")"
