#!/usr/bin/env bash
# Installs a .deb for real, into a copy-on-write view of this host (overlays on /usr, /etc and
# /var, chrooted, in the caller's private mount and network namespaces: nothing reaches the
# host, not even the IP forwarding the package turns on), then upgrades, removes and purges it,
# printing "key: value" lines for the test to check.
# Usage (as root, inside unshare --mount --net): package_install.sh PACKAGE.deb WORKDIR
set -euo pipefail
deb=$1 work=$2
R=$work/root
for d in usr etc var; do
  mkdir -p "$work/up/$d" "$work/wk/$d" "$R/$d"
  mount -t overlay xp-pkg -o "lowerdir=/$d,upperdir=$work/up/$d,workdir=$work/wk/$d" "$R/$d"
done
for l in bin sbin lib lib64; do ln -s "usr/$l" "$R/$l"; done
# An empty runtime cache: this host's own holds whatever its other builds unpacked. Deleted in
# the overlay only (a whiteout in the upper layer), so the package's postrm may remove the
# directory it made, as on a real host; a mount point there could not be removed.
rm -rf "$R/var/cache/xferproxy"
mkdir -p "$R/dev" "$R/proc" "$R/tmp" "$R/run"
mount --bind /dev "$R/dev"
mount -t proc xp-proc "$R/proc"
chmod 1777 "$R/tmp"
cp "$deb" "$R/tmp/pkg.deb"
in_root() { chroot "$R" "$@"; }
say() { printf '%s: %s\n' "$1" "$(in_root sh -c "$2" 2>&1 | tr '\n' ' ' | sed 's/ $//')"; }

in_root dpkg -i /tmp/pkg.deb >/dev/null
say installed "dpkg-query -W -f '\${Status}' xferproxy"
say binary "stat -c '%U:%G %a' /usr/bin/xferproxy"
say units "ls /usr/lib/systemd/system/ | grep xferproxy"
say sudoers "stat -c '%U:%G %a' /etc/sudoers.d/xferproxy; visudo -cf /etc/sudoers.d/xferproxy >/dev/null && echo valid"
say config "stat -c '%U:%G %a' /etc/xferproxy/aspera.conf"
say keys "stat -c '%U:%G %a' /etc/xferproxy/keys"
say group "getent group xferproxy | cut -d: -f1"
say state "stat -c '%U:%G %a' /var/lib/xferproxy"
say balancer "stat -c '%U:%G %a' /var/lib/xferproxy/balancer"
say logs "stat -c '%U:%G %a' /var/log/xferproxy"
# This package's runtime (the host's /var/cache, seen through the overlay, may hold others).
say runtime "sha=\$(head -c 4096 /usr/bin/xferproxy | sed -n 's/^XP_SHA256=//p'); test -f /var/cache/xferproxy/\$sha/.ok && echo unpacked"
say sshd_example "test -f /usr/share/doc/xferproxy/sshd_config.example && test ! -e /etc/ssh/sshd_config.d/xferproxy.conf && echo example-only"
say version "xferproxy version | cut -d' ' -f1"
say check "xferproxy check config"
say forwarding "sysctl -n net.ipv4.ip_forward"
say sysusers "grep -v '^#' /usr/lib/sysusers.d/xferproxy.conf"
say enabled "ls /etc/systemd/system/multi-user.target.wants/ | grep xferproxy"
say man "zcat /usr/share/man/man1/xferproxy.1.gz | head -n1 | cut -d' ' -f1-3"
say completion "bash -c '. /usr/share/bash-completion/completions/xferproxy; COMP_WORDS=(xferproxy check sy); COMP_CWORD=2; _xferproxy; echo \${COMPREPLY[*]}; COMP_WORDS=(xferproxy forward user d); COMP_CWORD=3; _xferproxy; echo \${COMPREPLY[*]}'"
say copyright "head -n1 /usr/share/doc/xferproxy/copyright; zcat /usr/share/doc/xferproxy/changelog.gz | head -n1"
say verify "systemd-analyze verify --man=no /usr/lib/systemd/system/xferproxy-dnat.service /usr/lib/systemd/system/xferproxy-forward.service && echo verified"
for unit in dnat forward; do
  say "exposure_$unit" "systemd-analyze security --offline=true /usr/lib/systemd/system/xferproxy-$unit.service | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p'"
done
# logrotate, for real (its postrotate only signals under systemd): the file moves, a new one
# takes its place for the daemons to reopen, writable by the group as before.
# Root's file too, in the directory root makes with its first line: readable by the group only.
in_root sh -c 'echo line >/var/log/xferproxy/xferproxy.log'
say root_logs "stat -c '%U:%G %a' /var/log/xferproxy/root"
in_root sh -c 'echo line >/var/log/xferproxy/root/xferproxy.log'
say logrotate "logrotate -f -s /tmp/logrotate.state /etc/logrotate.d/xferproxy && ls /var/log/xferproxy && stat -c '%U:%G %a %s' /var/log/xferproxy/xferproxy.log"
say root_logrotate "ls /var/log/xferproxy/root && stat -c '%U:%G %a %s' /var/log/xferproxy/root/xferproxy.log"
# An administrator's edit survives an upgrade (reinstall of the same package).
in_root sh -c 'sed -i "s|<enabled>false</enabled>|<enabled>false</enabled><!-- edited -->|" /etc/xferproxy/aspera.conf'
in_root dpkg -i --force-confold /tmp/pkg.deb >/dev/null
say upgraded "grep -c edited /etc/xferproxy/aspera.conf"
in_root dpkg -r xferproxy >/dev/null
say removed "ls /usr/bin/xferproxy /usr/lib/systemd/system/xferproxy-dnat.service /var/cache/xferproxy 2>&1 | grep -c 'No such file'; test -f /etc/xferproxy/aspera.conf && echo config-kept"
in_root dpkg -P xferproxy >/dev/null
say purged "ls /etc/xferproxy/aspera.conf /etc/sudoers.d/xferproxy /var/lib/xferproxy 2>&1 | grep -c 'No such file'; getent group xferproxy || echo no-group; ls /etc/systemd/system/multi-user.target.wants/ 2>/dev/null | grep -c xferproxy"
