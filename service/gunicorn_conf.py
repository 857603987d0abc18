"""gunicorn settings for production (`digits-serve`, `make serve`, the Docker image).

Everything can be overridden from the environment; the defaults suit a small (2-core) machine.
"""

import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
# Each worker is a separate process with its own copy of the model (TensorFlow does not survive fork,
# so no preload_app). Threads share one model; TensorFlow's own thread pool does the math.
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
worker_class = "gthread"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))  # a worker silent this long is replaced
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))  # SIGTERM: in-flight requests finish
keepalive = 5
accesslog = os.environ.get("ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
# Tight request-line and header limits: the API needs nothing bigger.
limit_request_line = 8190
limit_request_fields = 100
