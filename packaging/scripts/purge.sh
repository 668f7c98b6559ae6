# What the package made at run time. Configuration and logs are the administrator's and stay
# unless purged.
rm -rf /var/cache/xferproxy /var/lib/xferproxy
rmdir /etc/xferproxy/keys /etc/xferproxy 2>/dev/null || true
if getent group xferproxy >/dev/null; then groupdel xferproxy || true; fi
