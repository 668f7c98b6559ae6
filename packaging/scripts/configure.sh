# The sudoers drop-in (0440 from the package) must pass visudo, or it is set aside: sudo never
# reads a name with a dot.
if ! visudo -cf /etc/sudoers.d/xferproxy >/dev/null; then
  echo "xferproxy: /etc/sudoers.d/xferproxy does not pass visudo -c; moved aside to /etc/sudoers.d/xferproxy.invalid" >&2
  mv /etc/sudoers.d/xferproxy /etc/sudoers.d/xferproxy.invalid
fi
# IP forwarding now, as the package's sysctl.d file sets it at every boot.
sysctl -q -p /usr/lib/sysctl.d/60-xferproxy.conf >/dev/null 2>&1 ||
  echo "xferproxy: cannot set net.ipv4.ip_forward=1 now; it is set at the next boot" >&2
# Unpack once as root, shared read-only by every proxy user (no per-user copy, no first-session delay).
xferproxy version >/dev/null
