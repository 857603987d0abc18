# syntax=docker/dockerfile:1
# Production image of the digit recognizer: gunicorn serving the bundled models with LiteRT, no TensorFlow.
#   docker build -t digits .                                 # the default image (the last stage, `runtime`)
#   docker build --target savedmodel -t digits:savedmodel .  # with CPU-only TensorFlow, for RUNTIME=savedmodel
#   docker run --rm -p 8000:8000 digits
# Only service/, models/ (without their reports) and the pinned runtime dependencies reach the final
# stages: no training code, tests, data or build tools, and no pip.

# ---- build: a virtualenv with exactly the pinned runtime requirements ---------------------------------
FROM python:3.11.7-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements/serve.txt requirements/savedmodel.txt /tmp/
# The venv gets no pip of its own (the base image's pip installs into it through --python). --no-deps: the
# files are complete pinned sets (requirements/pin.py); serve.txt leaves out what ai-edge-litert declares and
# its interpreter never imports.
RUN python -m venv --without-pip /opt/venv \
    && python -m pip --python /opt/venv/bin/python install --no-deps --no-compile --requirement /tmp/serve.txt
# What serving never loads, about 80 MB: LiteRT's GPU accelerator, NPU vendor plug-ins, ahead-of-time compiler,
# tools and flatbuffer schema module (its interpreter needs only libpywrap_litert_common.so; the CI test predicts
# through this image); numpy's Fortran wrapper generator and build helpers; every package's test suite and test
# helpers, C sources, headers and type stubs; gevent's libuv loop (it runs libev); SQLAlchemy's dialects for
# databases we do not support and its optional compiled speed-ups (9 MB: it runs the same modules as Python, and a
# correction makes a couple of queries); Pillow's AVIF decoder, font rendering, Tk bridge and
# colour management with their libraries (10 MB: uploads are PNG, JPEG, GIF, BMP, WebP or TIFF, no text is drawn and
# no ICC profile applied); numpy's static libraries for C extensions. Then compiled ahead: a read-only root
# file system cannot take .pyc files later.
WORKDIR /opt/venv/lib/python3.11/site-packages
RUN rm -r ai_edge_litert/libLiteRt.so ai_edge_litert/libLiteRtWebGpuAccelerator.so ai_edge_litert/tools \
        ai_edge_litert/vendors ai_edge_litert/aot numpy/f2py numpy/distutils \
        sqlalchemy/testing sqlalchemy/dialects/mysql sqlalchemy/dialects/mssql sqlalchemy/dialects/oracle \
        alembic/testing gevent/testing gevent/libuv ai_edge_litert/schema_py_generated.py \
    && find . -depth -type d -name tests -exec rm -r {} + \
    && find . \( -name '*.pyi' -o -name '*.pxd' -o -name '*.pyx' -o -name '*.c' -o -name '*.h' -o -name '*.cpp' \
        -o -name '*.hpp' -o -path './sqlalchemy/*_cy.cpython-*.so' \) -delete \
    && rm PIL/_avif.*.so PIL/_imagingft.*.so PIL/_imagingtk.*.so pillow.libs/libavif-* pillow.libs/libbrotli* \
        pillow.libs/libfreetype-* pillow.libs/libharfbuzz-* pillow.libs/libpng16-* \
        PIL/_imagingcms.*.so pillow.libs/liblcms2-* numpy/_core/lib/*.a numpy/random/lib/*.a \
    && python -m compileall -q /opt/venv/lib

# The default image runs the models with LiteRT: their model.tflite and metadata.json, not their SavedModels (8 MB).
COPY models/ /models/
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Only each model's newest complete version (with its metadata.json) is served, as service/contract.py's
# latest_version picks it: older ones, and a newer one half-written or left empty, stay out.
RUN find /models \( -name saved_model.pb -o -name fingerprint.pb -o -name variables \) -prune -exec rm -r {} + \
    && for model in /models/*/; do \
        keep=$(find "$model" -mindepth 2 -maxdepth 2 -name metadata.json -printf '%h\n' | sort -V | tail -n 1); \
        find "$model" -mindepth 1 -maxdepth 1 -type d -name '[0-9]*' ! -path "$keep" -print0 | xargs -0 -r rm -r; \
    done

# ---- build-savedmodel: the same virtualenv plus TensorFlow ------------------------------------------------
FROM build AS build-savedmodel
RUN python -m pip --python /opt/venv/bin/python install --no-deps --no-compile --requirement /tmp/savedmodel.txt \
    && python -m compileall -q /opt/venv/lib

# ---- savedmodel: `docker build --target savedmodel`; the runtime stage below, with TensorFlow ----------
FROM python:3.11.7-slim-bookworm AS savedmodel
RUN groupadd --system --gid 10001 digits \
    && useradd --system --uid 10001 --gid digits --no-create-home --shell /usr/sbin/nologin digits \
    && install -d -o 10001 -g 10001 -m 0750 /data
COPY --from=build-savedmodel /opt/venv /opt/venv
WORKDIR /app
COPY service/ /app/service/
COPY models/ /app/models/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    HOST=0.0.0.0 \
    PORT=8000 \
    WEB_CONCURRENCY=2 \
    MODEL_DIR= \
    RUNTIME=savedmodel \
    DATA_DIR=/data \
    XDG_RUNTIME_DIR=/tmp \
    PROMETHEUS_MULTIPROC_DIR=/tmp/digits-metrics
VOLUME /data
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('PORT', '8000'), timeout=2)"]
STOPSIGNAL SIGTERM
CMD ["gunicorn", "--config", "service/gunicorn_conf.py", "service:create_app()"]

# ---- runtime (the default): the virtualenv, the service and the models, run as an unprivileged user ---
FROM python:3.11.7-slim-bookworm AS runtime
# /data: the service's writable state, a volume owned by the service's user (the root file system is read-only)
RUN groupadd --system --gid 10001 digits \
    && useradd --system --uid 10001 --gid digits --no-create-home --shell /usr/sbin/nologin digits \
    && install -d -o 10001 -g 10001 -m 0750 /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY service/ /app/service/
COPY --from=build /models/ /app/models/
# MODEL_DIR empty = the latest version of the bundled models/cnn; point it at a mounted volume
# (e.g. /models/cnn) to serve another model without rebuilding. RUNTIME: LiteRT, the only one installed here.
# XDG_RUNTIME_DIR: where gunicorn puts its control socket (else $HOME/.gunicorn, on the read-only root).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    HOST=0.0.0.0 \
    PORT=8000 \
    WEB_CONCURRENCY=2 \
    MODEL_DIR= \
    RUNTIME=litert \
    DATA_DIR=/data \
    XDG_RUNTIME_DIR=/tmp \
    PROMETHEUS_MULTIPROC_DIR=/tmp/digits-metrics
VOLUME /data
USER 10001:10001
EXPOSE 8000
# slim images have no curl: the check uses the Python that is already there
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('PORT', '8000'), timeout=2)"]
STOPSIGNAL SIGTERM
# exec form: gunicorn is PID 1 and gets SIGTERM directly (graceful stop, see gunicorn_conf.py)
CMD ["gunicorn", "--config", "service/gunicorn_conf.py", "service:create_app()"]
