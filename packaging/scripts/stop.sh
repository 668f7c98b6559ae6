# xferproxy removal: stop both services (the DNAT service removes nothing sessions still hold;
# "xferproxy dnat reap --all" does).
if [ -d /run/systemd/system ]; then
  systemctl disable --now xferproxy-dnat.service xferproxy-forward.service >/dev/null 2>&1 || true
fi
/usr/bin/xferproxy dnat reap --all >/dev/null 2>&1 || true
