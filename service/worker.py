"""The gunicorn worker: gevent, so that a slow or idle connection costs a greenlet, not a thread, plus bounds on
how long and how slowly a client may send its request, and errors that reach clients still sending a body.

gunicorn's threaded worker gives each connection whose request is being read a thread of its own: a few dozen
clients sending slowly hold them all (bench/abuse.py). With gevent, every connection is a greenlet of a few
kilobytes, so hundreds of slow clients cost memory, not service. Bounds (each from the environment, see
gunicorn_conf.py and the README's configuration table):
- a request's line and headers, and the wait for the next request on a kept-alive connection: `keepalive` seconds
  (gunicorn's own timeout around reading each request's head in its asynchronous workers);
- a body must arrive within BODY_TIMEOUT seconds plus its length at BODY_MIN_RATE bytes per second, or the
  request gets a 408 and the connection is closed;
- CLIENT_CONNECTIONS open connections per client address and worker; `worker_connections` per worker, capped by
  the process's file-descriptor limit;
- `100 Continue` goes out only when the application first reads the body, so an error decided from the headers
  (413, 415, 404...) reaches the client before it sends the body;
- a connection closed with request body still unread is drained for up to LINGER_SECONDS / LINGER_BYTES first,
  as nginx's lingering close does: a client still sending (Python's urllib, requests) then reads its error
  instead of a connection reset;
- memory: after a burst of connections the worker hands freed heap back (malloc_trim); what stays (pymalloc arenas
  pinned by a few long-lived objects, libev's descriptor table sized for the largest descriptor seen) is counted,
  and a worker left more than RECYCLE_AFTER_MB larger by bursts exits gracefully for a fresh one, one worker at a
  time (recycle()), as gunicorn's max_requests does for slow leaks.
"""

from __future__ import annotations

import ctypes
import fcntl
import functools
import json
import os
import resource
import tempfile
import time
from collections import Counter
from dataclasses import dataclass

import gevent
from gevent.pool import Pool
from gevent.server import StreamServer
from gunicorn.sock import ssl_context
from gunicorn.workers.ggevent import GeventWorker

from service.errors import RequestTimeout, error_body

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
FD_RESERVE = 64  # descriptors kept for files, the model, logs and the metrics directory
TRIM_AFTER = 64  # open connections: a burst this large leaves freed memory worth handing back
# Seconds between two workers' recycles, so that one's replacement has loaded its model before the next goes.
RECYCLE_SPACING = 3.0
# Heartbeats after a burst before its left-over memory is weighed: right after malloc_trim the heap is at its
# smallest, and the next requests grow it back by a megabyte or two (bench/abuse.py, 19:25 probe).
SETTLE_BEATS = 3


def yield_to_loop() -> None:
    """Let the event loop poll the sockets once, run what is ready, then carry on.

    gevent.sleep(0) is not enough: it queues a callback, and gevent runs callbacks until none is left before it
    polls sockets again, so busy clients could still starve waiting ones. A timer of 0 s is due at once: the loop
    polls without blocking, switches to every greenlet whose socket is ready, then back here.
    """
    hub = gevent.get_hub()
    timer = hub.loop.timer(0.0)
    try:
        hub.wait(timer)
    finally:
        timer.close()


def trim_heap() -> None:
    """Return freed heap pages to the system (glibc's malloc_trim); elsewhere, nothing.

    Hundreds of connections leave their freed buffers in the C heap, which glibc keeps by default:
    bench/abuse.py measures the worker's memory after an attack with and without it.
    """
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


@functools.cache
def _libc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def rss_mb() -> float:
    """This process's resident memory, in MB (Linux's /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0


def take_turn(path: str, spacing: float = RECYCLE_SPACING) -> bool:
    """Whether this worker may recycle now: no other worker of the server did in the last `spacing` seconds.

    The file (one per server) holds the time of the last recycle; an exclusive lock makes check-and-write atomic.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        last = os.read(fd, 64)
        now = time.time()
        if last and now - float(last) < spacing:
            return False
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, f"{now:.3f}".encode())
        return True
    finally:
        os.close(fd)  # also releases the lock


@dataclass(frozen=True)
class Limits:
    body_timeout: float = 10.0  # seconds every body gets, before its length is counted at the minimum rate
    body_min_rate: float = 32768.0  # bytes per second
    client_connections: int = 64  # per client address, per worker
    linger_seconds: float = 5.0
    linger_bytes: int = 128 * 1024 * 1024
    recycle_after_mb: float = 3.0  # memory left over by bursts of connections; 0: never recycle

    @classmethod
    def from_env(cls, environ=os.environ) -> Limits:
        names = {"body_timeout": float, "body_min_rate": float, "client_connections": int}
        names |= {"linger_seconds": float, "linger_bytes": int, "recycle_after_mb": float}
        return cls(**{k: cast(environ[k.upper()]) for k, cast in names.items() if environ.get(k.upper())})


class DeadlineReader:
    """gunicorn's body reader, sending `100 Continue` on the first read and failing reads past the deadline."""

    def __init__(self, reader, req, sock, limits: Limits, expects_continue: bool):
        self.reader, self.req, self.sock, self.limits = reader, req, sock, limits
        self.expects_continue = expects_continue
        self.deadline: float | None = None
        self.timed_out = False
        # Until the client is told to go on, it may never send the body: the connection cannot be reused.
        req.must_close = req.must_close or expects_continue

    def read(self, size: int) -> bytes:
        if self.deadline is None:
            self._start()
        timer = gevent.Timeout(max(0.0, self.deadline - time.monotonic()))
        timer.start()
        try:
            return self.reader.read(size)
        except gevent.Timeout as e:
            if e is not timer:
                raise
            self.timed_out = self.req.must_close = True
            raise RequestTimeout(
                f"the request body arrived slower than {self.limits.body_min_rate:,.0f} bytes/s"
            ) from None
        finally:
            timer.close()

    def _start(self) -> None:
        length = getattr(self.reader, "length", None) or 0  # chunked bodies: only the fixed allowance
        self.deadline = time.monotonic() + self.limits.body_timeout + length / self.limits.body_min_rate
        if self.expects_continue:
            self.sock.sendall(CONTINUE)
            self.req.must_close = False


class HandOverServer(StreamServer):
    """gevent's StreamServer that, when closed, first serves the connections the kernel has already queued for it.

    With SO_REUSEPORT each worker has a listening socket of its own, and the kernel hands every new connection to
    one of them. Closing a socket resets the connections still waiting in its queue: every graceful exit of a
    worker (a recycle, a reload, a shutdown) would reset the clients that the kernel had already connected to it.
    Accepting until the queue is empty right before the close leaves only what arrives in the microseconds between
    the two (tests/test_abuse.py: clients predicting while workers recycle).
    """

    def close(self) -> None:
        if not self.closed:
            self.stop_accepting()
            self._accept_queued()
        super().close()

    def _accept_queued(self) -> None:
        while not self.full():
            try:
                args = self.do_read()  # None once nothing is queued: the listening socket does not block
            except OSError:  # out of descriptors (EMFILE), or the socket is gone: leave the rest to the kernel
                return
            if not args:
                return
            self.do_handle(*args)


class Listener:
    """A listening socket as the connections it accepted see it: its address outlives the socket.

    gunicorn's handler asks the listener for its address when it starts reading a connection. A connection
    accepted just before the listener closes (a worker's graceful exit) would find it closed, fail with EBADF
    and be reset unanswered (six clients predicting while workers recycled: 13 resets in 6 recycles, none since)."""

    def __init__(self, sock):
        self.sock, self.name = sock, sock.getsockname()

    def getsockname(self):
        return self.name

    def __getattr__(self, name: str):
        return getattr(self.sock, name)


class GuardedGeventWorker(GeventWorker):
    """gunicorn's gevent worker with the bounds above."""

    def init_process(self) -> None:
        self.limits = Limits.from_env()
        self.per_client: Counter[str] = Counter()
        self.peak_connections = 0
        self.calm_rss = 0.0  # MB, read while no burst is under way
        self.settling = 0  # heartbeats until a burst's left-over is weighed
        self.left_over = 0.0  # MB that bursts added and did not give back
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a connection is a descriptor
        self.worker_connections = max(1, min(self.worker_connections, hard - FD_RESERVE))
        super().init_process()  # runs the worker's loop, run(): must come last

    def run(self) -> None:
        """Serve until told to stop; then serve what was already queued, finish open requests, and return.

        gunicorn's own loop, except for the listening sockets' hand-over (HandOverServer) and the number of
        connections accepted per loop turn (accept_at_once())."""
        pool = Pool(self.worker_connections)
        for s in self.sockets:
            s.setblocking(1)  # as gunicorn does: the server's accept never waits (gevent keeps the fd non-blocking)
        ssl_args = {"ssl_context": ssl_context(self.cfg)} if self.cfg.is_ssl else {}
        servers = [
            HandOverServer(s, handle=functools.partial(self.handle, Listener(s)), spawn=pool, **ssl_args)
            for s in self.sockets
        ]
        for server in servers:
            server.max_accept = self.accept_at_once()
            server.start()
        while self.alive:
            self.notify()
            gevent.sleep(1.0)
        for server in servers:
            server.close()
        self._finish(pool)

    def accept_at_once(self) -> int:
        """How many queued connections one loop turn accepts.

        gunicorn's gevent worker accepts one per turn when several workers share one listening socket, so that
        they share it evenly. With reuse_port each has its own socket, and accepting one at a time only makes a
        burst of new connections wait behind busy ones (wrk, 64 connections: p99 446 ms over 5 s, mostly while
        connecting)."""
        shared = self.cfg.workers > 1 and not self.cfg.reuse_port
        return 1 if shared else StreamServer.max_accept

    def _finish(self, pool: Pool) -> None:
        """Let open requests finish within graceful_timeout (heartbeats go on meanwhile), then end the rest."""
        deadline = time.monotonic() + self.cfg.graceful_timeout
        while pool.free_count() != pool.size and time.monotonic() < deadline:
            self.notify()
            pool.join(timeout=1.0)
        if pool.free_count() != pool.size:
            self.log.warning("Worker graceful timeout (pid:%s)", self.pid)
            pool.kill(timeout=1)

    def notify(self) -> None:
        """The worker's heartbeat (about once a second): also hand memory back after a burst of connections."""
        super().notify()
        open_now = sum(self.per_client.values())
        self.peak_connections = max(self.peak_connections, open_now)
        if self.peak_connections >= TRIM_AFTER and open_now * 4 < self.peak_connections:  # a burst has ended
            trim_heap()
            self.peak_connections = open_now
            self.settling = SETTLE_BEATS
        elif self.peak_connections < TRIM_AFTER:
            self._weigh(rss_mb())
        self.recycle()  # also retried on later heartbeats when another worker had just taken its turn

    def _weigh(self, rss: float) -> None:
        """In calm times: once the heap has settled after a burst, count what the burst left behind."""
        if self.settling:
            self.settling -= 1
            if self.settling:
                return
            self.left_over += max(0.0, rss - self.calm_rss)
        self.calm_rss = rss  # growth in calm times (a model loaded on first use...) is not a burst's

    def recycle(self) -> None:
        """Exit gracefully, for the arbiter to start a fresh worker, if bursts left this one too large.

        In-flight requests finish (graceful_timeout); one worker at a time (take_turn()), so the others answer
        while the replacement loads its model. bench/abuse.py measures memory before and after attacks."""
        limit = self.limits.recycle_after_mb
        if not limit or self.left_over <= limit or not self.alive:
            return
        folder = self.cfg.worker_tmp_dir or tempfile.gettempdir()
        if take_turn(os.path.join(folder, f"digits-recycle-{self.ppid}")):
            self.log.info("recycling worker %s: bursts of connections left %.1f MB behind", self.pid, self.left_over)
            self.alive = False  # gunicorn's loop stops accepting, lets open requests finish, and exits

    def handle(self, listener, client, addr) -> None:
        who = addr[0] if isinstance(addr, tuple) else "local"
        if self.per_client[who] >= self.limits.client_connections:
            self._refuse(client, who)
            return
        self.per_client[who] += 1
        try:
            super().handle(listener, client, addr)
        finally:
            self.per_client[who] -= 1
            if not self.per_client[who]:
                del self.per_client[who]

    def handle_request(self, listener_name, req, sock, addr):
        reader = DeadlineReader(req.body.reader, req, sock, self.limits, req._expected_100_continue)
        req._expected_100_continue = False  # gunicorn would send 100 Continue before the app has looked
        req.body.reader = reader
        try:
            kept_alive = super().handle_request(listener_name, req, sock, addr)
            # A greenlet is never interrupted: if this client's next request is already there, it would be served
            # at once, and a few busy keep-alive clients could hold the worker while the others wait for seconds
            # (wrk, 32 connections: p90 2.1 s). Yielding here puts this connection behind every ready one.
            yield_to_loop()
            return kept_alive
        except StopIteration:
            if not reader.timed_out:
                self._linger(reader.reader)
            raise
        finally:
            # Kept alive, gunicorn discards the rest of the body before the next request, within `keepalive`.
            req.body.reader = reader.reader

    def _linger(self, reader) -> None:
        """Read and discard what the client still sends of the body, within the linger bounds."""
        discarded = 0
        with gevent.Timeout(self.limits.linger_seconds, False):
            while discarded < self.limits.linger_bytes:
                chunk = reader.read(65536)
                if not chunk:
                    return
                discarded += len(chunk)

    def _refuse(self, client, who: str) -> None:
        """Over the per-client limit: a 429 JSON answer, then the connection is closed."""
        self.log.warning("refused a connection from %s: %d already open", who, self.per_client[who])
        body = json.dumps(
            error_body("too_many_connections", f"more than {self.limits.client_connections} connections open")
        ).encode()
        head = (
            "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
        )
        with gevent.Timeout(1.0, False):
            client.sendall(head.encode() + body)
        client.close()
