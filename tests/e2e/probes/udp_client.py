#!/usr/bin/env python3
"""Sends numbered UDP datagrams from a fixed source port and counts intact echoes.

Usage: udp_client.py SRC_PORT DST_IP DST_PORT COUNT [SIZE]
Prints one JSON line: {"sent": N, "echoed": M}. Waits at most 3 s for stragglers.
"""
import json
import socket
import sys
import time

src_port, dst_ip, dst_port, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
size = int(sys.argv[5]) if len(sys.argv) > 5 else 200
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("0.0.0.0", src_port))
sock.settimeout(0.2)
sent = {}
for i in range(count):
    payload = (f"{src_port}:{i}:".encode() + bytes(range(256)) * (size // 256 + 1))[:size]
    sent[payload] = False
    sock.sendto(payload, (dst_ip, dst_port))
    time.sleep(0.01)
deadline = time.monotonic() + 3
while time.monotonic() < deadline and not all(sent.values()):
    try:
        data, _ = sock.recvfrom(65535)
    except socket.timeout:
        continue
    if data in sent:
        sent[data] = True
print(json.dumps({"sent": count, "echoed": sum(sent.values())}))
