"""gunicorn settings for production (`digits-serve`, `make serve`, the Docker image).

Everything can be overridden from the environment; the defaults suit a small (2-core) machine.
"""

import os
import tempfile

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
# Each worker is a separate process that loads its own copy of the model after the fork (no preload_app:
# TensorFlow, behind RUNTIME=savedmodel, does not survive a fork). With LiteRT, each request takes an
# interpreter of its own from a pool (service/runtimes.py).
# Default 2: preprocessing is Python (one core per process under the GIL), so two processes keep a
# 2-core machine busy. Every worker adds a model's memory (whole-server RSS: python -m bench.serve_bench).
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# The worker class: gevent (service/worker.py). Each connection is a greenlet, so clients that send slowly
# or sit idle cost a few kilobytes each, not one of a handful of threads (python -m bench.abuse).
# `gthread` is the threaded worker this service used before, kept for side-by-side benchmarks (--compare);
# its threads per worker: 4, enough to overlap network waits, few enough that the GIL is not passed around
# in a convoy (ad hoc wrk A/B runs, not recorded: 8 gave no more throughput and a worse p99).
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
WORKER_CLASSES = {"gevent": "service.worker.GuardedGeventWorker", "gthread": "gthread"}
worker_class = WORKER_CLASSES[os.environ.get("WORKER_CLASS", "gevent")]
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "1000"))  # per worker (gevent)
# One listening socket per worker (SO_REUSEPORT): the kernel spreads new connections evenly over the
# workers. With one shared socket, whichever worker wakes first accepts, and a burst of keep-alive
# connections can all land on one worker while the other idles (seen in ad hoc wrk runs, not recorded).
# The price: if a worker dies, connections still queued on its socket are reset (bench/faults.py).
reuse_port = True
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))  # a worker silent this long is replaced
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))  # SIGTERM: in-flight requests finish
# gevent: also the time a client has to send a request's line and headers. Never 0: that would lift the bound.
keepalive = max(1, int(os.environ.get("KEEPALIVE", "5")))
# The worker heartbeat touches a file on every loop iteration; on a disk file system that costs a
# metadata write per request (gunicorn's docs advise tmpfs). /dev/shm is tmpfs on Linux and in Docker.
worker_tmp_dir = os.environ.get("WORKER_TMP_DIR") or ("/dev/shm" if os.path.isdir("/dev/shm") else None)
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
# Tight request-line and header limits: the API needs nothing bigger.
limit_request_line = int(os.environ.get("LIMIT_REQUEST_LINE", "8190"))  # bytes
limit_request_fields = int(os.environ.get("LIMIT_REQUEST_FIELDS", "100"))  # header lines
limit_request_field_size = int(os.environ.get("LIMIT_REQUEST_FIELD_SIZE", "8190"))  # bytes per header line

# ---- metrics: prometheus_client's multiprocess mode, so /metrics adds up every worker -------------
# Must be set before prometheus_client is first imported (it picks its value store at import time).
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="digits-metrics-")


def on_starting(server):
    """A fresh metrics directory per server start: old workers' files would be counted again."""
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        if name.endswith(".db"):
            os.remove(os.path.join(folder, name))


def post_fork(server, worker):
    """Each worker keeps the memory a request frees for the next one (service/allocator.py)."""
    from service.allocator import keep_freed_memory

    keep_freed_memory()


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


# ---- logs: JSON lines on stdout. The app writes the access log itself (logger digits.access), with
# the request id it also returns in X-Request-ID, so gunicorn's own access log is off.
accesslog = None
logger_class = "service.logs.AppAccessLogger"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "service.logs.JsonFormatter"}},
    "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
    "root": {"level": loglevel.upper(), "handlers": ["stdout"]},
    "loggers": {
        "gunicorn.error": {"level": loglevel.upper(), "handlers": ["stdout"], "propagate": False},
        "gunicorn.access": {"handlers": [], "propagate": False},
        "digits.access": {
            "level": os.environ.get("ACCESS_LOG_LEVEL", "INFO").upper(),  # WARNING turns the access log off
            "handlers": ["stdout"],
            "propagate": False,
        },
    },
}
