# The proxy users' group, as the package's sysusers.d file declares it (systemd-sysusers where
# present, groupadd otherwise).
if command -v systemd-sysusers >/dev/null 2>&1; then
  systemd-sysusers --replace=/usr/lib/sysusers.d/xferproxy.conf - <<'SYSUSERS' || true
@SYSUSERS@
SYSUSERS
fi
getent group xferproxy >/dev/null || groupadd --system xferproxy
