#!/usr/bin/env python3
"""One-way UDP stream: SIZE-byte datagrams (default 1400) as fast as one core sends, for SECONDS.

Usage: udp_send.py SRC_PORT DST_IP DST_PORT SECONDS [SIZE]
Prints one JSON line: {"sent": N, "seconds": elapsed}.
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
sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
sock.bind(("0.0.0.0", src_port))
sock.connect((dst_ip, dst_port))
payload = bytes(size)
sent = 0
start = time.monotonic()
end = start + seconds
while time.monotonic() < end:
    try:
        for _ in range(64):
            sock.send(payload)
            sent += 1
    except BlockingIOError:
        select.select([], [sock], [], 0.001)
    except ConnectionRefusedError:
        pass
print(json.dumps({"sent": sent, "seconds": time.monotonic() - start}))
