# Root's state and cache, the balancer and log directories shared with the group, the keys.
install -d -m 755 -o root -g root /var/lib/xferproxy /var/cache/xferproxy
install -d -m 2770 -o root -g xferproxy /var/lib/xferproxy/balancer /var/log/xferproxy
# Root's own log lines: only root writes here, the group reads.
install -d -m 2750 -o root -g xferproxy /var/log/xferproxy/root
install -d -m 700 -o root -g root /etc/xferproxy/keys
# The DNAT service's socket directory, as the package's tmpfiles.d file makes it at every boot.
install -d -m 750 -o root -g xferproxy /run/xferproxy
