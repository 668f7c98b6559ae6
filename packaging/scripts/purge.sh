# xferproxy purge: what the package made at run time. Configuration and logs are the
# administrator's and stay unless purged.
rm -rf /var/cache/xferproxy /var/lib/xferproxy
rmdir /etc/xferproxy/keys /etc/xferproxy 2>/dev/null || true
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
getent group xferproxy >/dev/null && groupdel xferproxy || true
