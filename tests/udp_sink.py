#!/usr/bin/env python3
"""UDP sink: run upstream as a session's command (or directly, as the baseline).

Usage: udp_sink.py PORT
Binds UDP PORT, prints "ready", counts datagrams and bytes until stdin reaches
EOF (or 300 s), then prints one JSON line: {"datagrams": N, "bytes": M}.
"""
import json
import select
import socket
import sys
import time

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
sock.bind(("0.0.0.0", int(sys.argv[1])))
sock.setblocking(False)
print("ready", flush=True)
datagrams = size = 0
deadline = time.monotonic() + 300
while time.monotonic() < deadline:
    readable, _, _ = select.select([sock, sys.stdin], [], [], 0.5)
    if sock in readable:
        try:
            while True:
                data = sock.recv(65535)
                datagrams += 1
                size += len(data)
        except BlockingIOError:
            pass
    if sys.stdin in readable and not sys.stdin.buffer.read1(4096):
        break
print(json.dumps({"datagrams": datagrams, "bytes": size}), flush=True)
