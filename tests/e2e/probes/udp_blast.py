#!/usr/bin/env python3
"""UDP stream through an echo endpoint, as fast as one core sends.

Usage: udp_blast.py SRC_PORT DST_IP DST_PORT SECONDS [SIZE]
Sends SIZE-byte datagrams (default 1400) for SECONDS while counting the
echoes that come back, then waits 1 s for stragglers. Prints one JSON line:
{"sent": N, "received": M, "loss": fraction, "mbit_per_s": echoed payload rate}.
"""
import json
import select
import socket
import sys
import time

src_port, dst_ip, dst_port, seconds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
size = int(sys.argv[5]) if len(sys.argv) > 5 else 1400
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
sock.bind(("0.0.0.0", src_port))
sock.connect((dst_ip, dst_port))
sock.setblocking(False)
payload = bytes(size)


def drain():
    """Reads every echo waiting in the socket; returns how many."""
    count = 0
    try:
        while True:
            sock.recv(65535)
            count += 1
    except (BlockingIOError, ConnectionRefusedError):
        return count


sent = received = 0
start = time.monotonic()
end = start + seconds
while True:
    now = time.monotonic()
    if now >= end:
        break
    try:
        for _ in range(32):
            sock.send(payload)
            sent += 1
    except BlockingIOError:
        select.select([sock], [sock], [], 0.001)
    except ConnectionRefusedError:
        pass
    received += drain()
elapsed = time.monotonic() - start
deadline = time.monotonic() + 1.0
while time.monotonic() < deadline:
    ready, _, _ = select.select([sock], [], [], 0.1)
    if ready:
        received += drain()
print(json.dumps({
    "sent": sent,
    "received": received,
    "loss": round(1 - received / sent, 4) if sent else 1,
    "mbit_per_s": round(received * size * 8 / elapsed / 1e6, 1),
}))
