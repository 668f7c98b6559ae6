# Every DNAT rule of xferproxy goes with the package (the DNAT service, once stopped, removes
# nothing sessions still hold; "xferproxy dnat reap --all" does).
xferproxy dnat reap --all >/dev/null 2>&1 || true
