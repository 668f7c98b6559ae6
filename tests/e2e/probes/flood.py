"""Slow-loris flood for the forward daemon's tests: opens COUNT connections
from each source address, sends half a request head on each that connects
and holds them for HOLD seconds, then prints how many it sent on and how
many of those the server had closed. Bounded: at most 30,000 sockets (and
the fd limit), 20 s to connect, HOLD at most 60 s."""
import errno, resource, select, socket, sys, time

host, port, count, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
sources = sys.argv[5:]
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
assert count * len(sources) <= min(hard - 64, 30_000) and hold <= 60
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

pending = {}
for src in sources:
    for _ in range(count):
        s = socket.socket()
        s.bind((src, 0))
        s.setblocking(False)
        err = s.connect_ex((host, port))
        if err in (0, errno.EINPROGRESS):
            pending[s.fileno()] = s
        else:
            s.close()

# Half a head on every connection that opens.
poller = select.poll()
for fd in pending:
    poller.register(fd, select.POLLOUT)
sent = {}
deadline = time.time() + 20
while pending and time.time() < deadline:
    for fd, _ in poller.poll(200):
        s = pending.pop(fd)
        poller.unregister(fd)
        if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
            try:
                s.send(b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\n")
                sent[fd] = s
                continue
            except OSError:
                pass
        s.close()
print(f"sent {len(sent)}", flush=True)
time.sleep(hold)

closed = 0
poller = select.poll()
for fd in sent:
    poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
ready = {fd for fd, _ in poller.poll(0)}
for fd, s in sent.items():
    if fd in ready:
        try:
            if s.recv(1) == b"":
                closed += 1
        except OSError:
            closed += 1
    s.close()
for s in pending.values():
    s.close()
print(f"closed {closed} of {len(sent)}", flush=True)
