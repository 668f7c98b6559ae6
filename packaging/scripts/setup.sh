# xferproxy install/upgrade: the group, root's state, the shared log and balancer directories, the
# sudoers drop-in (checked with visudo), the unpacked runtime, and the DNAT service.
set -e
getent group xferproxy >/dev/null || groupadd --system xferproxy
install -d -m 755 -o root -g root /var/lib/xferproxy /var/cache/xferproxy
install -d -m 2770 -o root -g xferproxy /var/lib/xferproxy/balancer /var/log/xferproxy
install -d -m 700 -o root -g root /etc/xferproxy/keys
chmod 440 /etc/sudoers.d/xferproxy
if ! visudo -cf /etc/sudoers.d/xferproxy >/dev/null; then
  echo "xferproxy: /etc/sudoers.d/xferproxy does not pass visudo -c; moved aside to /etc/sudoers.d/xferproxy.invalid" >&2
  mv /etc/sudoers.d/xferproxy /etc/sudoers.d/xferproxy.invalid
fi
# Unpack once as root, shared read-only by every proxy user (no per-user copy, no first-session delay).
/usr/bin/xferproxy version >/dev/null
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable xferproxy-dnat.service >/dev/null 2>&1 || true
  systemctl restart xferproxy-dnat.service || true
fi
