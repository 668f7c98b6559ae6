"""Slow-loris flood for the forward daemon's tests: opens COUNT connections
from each source address, sends half a request head on each that connects
and holds them for HOLD seconds, then prints how many it sent on and how
many of those the server had closed (waiting up to GRACE seconds more for
the last). Bounded: at most 30,000 sockets (and the fd limit), 20 s to
connect, HOLD at most 60 s."""
import errno, resource, select, socket, sys, time

host, port, count, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
sources = sys.argv[5:]
GRACE = 30
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

# The daemon's 10 s runs from its accept, which under load comes later than our connect: what
# counts is that it closes every connection, so the stragglers get up to GRACE seconds more.
closed = 0
poller = select.poll()
for fd in sent:
    poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
open_fds = set(sent)
deadline = time.time() + GRACE
while open_fds:
    for fd, _ in poller.poll(200 if time.time() < deadline else 0):
        if fd not in open_fds:
            continue
        open_fds.discard(fd)
        poller.unregister(fd)
        try:
            if sent[fd].recv(1) == b"":
                closed += 1
        except OSError:
            closed += 1
    if time.time() >= deadline:
        break
for s in sent.values():
    s.close()
for s in pending.values():
    s.close()
print(f"closed {closed} of {len(sent)}", flush=True)
