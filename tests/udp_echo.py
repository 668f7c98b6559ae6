#!/usr/bin/env python3
"""UDP echo endpoint, run upstream as a reverse session's command.

Usage: udp_echo.py PORT
Binds UDP PORT on all addresses (SO_REUSEPORT, so concurrent sessions of one
server can each run it), prints "ready", echoes every datagram to its sender
unchanged, and exits when stdin reaches EOF (the SSH session ended) or after
300 seconds. It counts what it echoed on stderr when it ends.
"""
import select
import socket
import sys
import time

port = int(sys.argv[1])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
sock.bind(("0.0.0.0", port))
print("ready", flush=True)
echoed = 0
deadline = time.monotonic() + 300
while time.monotonic() < deadline:
    readable, _, _ = select.select([sock, sys.stdin], [], [], 1.0)
    if sock in readable:
        data, peer = sock.recvfrom(65535)
        sock.sendto(data, peer)
        echoed += 1
    if sys.stdin in readable and not sys.stdin.buffer.read1(4096):
        break
print(f"echoed {echoed}", file=sys.stderr, flush=True)
