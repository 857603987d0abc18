# syntax=docker/dockerfile:1
# Production image of the digit recognizer: gunicorn serving the bundled models on CPU-only TensorFlow.
#   docker build -t digits .
#   docker run --rm -p 8000:8000 digits
# Only service/, models/ (without their reports) and the pinned runtime dependencies reach the final
# stage: no training code, tests, data or build tools.

# ---- build: a virtualenv with exactly the pinned runtime requirements ---------------------------------
FROM python:3.11.7-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements/serve.txt /tmp/serve.txt
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-compile --requirement /tmp/serve.txt \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib

# ---- runtime: the virtualenv, the service and the models, run as an unprivileged user ----------------
FROM python:3.11.7-slim-bookworm AS runtime
# /data: the corrections' SQLite database when DATABASE_URL is unset (DATA_DIR), a volume owned by the user
RUN groupadd --system --gid 10001 digits \
    && useradd --system --uid 10001 --gid digits --no-create-home --shell /usr/sbin/nologin digits \
    && install -d -o 10001 -g 10001 -m 0750 /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY service/ /app/service/
COPY models/ /app/models/
# MODEL_DIR empty = the latest version of the bundled models/cnn; point it at a mounted volume
# (e.g. /models/cnn) to serve another model without rebuilding.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    HOST=0.0.0.0 \
    PORT=8000 \
    WEB_CONCURRENCY=2 \
    MODEL_DIR= \
    PROMETHEUS_MULTIPROC_DIR=/tmp/digits-metrics \
    DATA_DIR=/data
VOLUME ["/data"]
USER 10001:10001
EXPOSE 8000
# slim images have no curl: the check uses the Python that is already there
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('PORT', '8000'), timeout=2)"]
STOPSIGNAL SIGTERM
# exec form: gunicorn is PID 1 and gets SIGTERM directly (graceful stop, see gunicorn_conf.py)
CMD ["gunicorn", "--config", "service/gunicorn_conf.py", "service:create_app()"]
