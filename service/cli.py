"""Console scripts: `digits-serve` (gunicorn, production) and `digits-predict FILE...`."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from pathlib import Path

APP = "service:create_app()"
GUNICORN_CONF = Path(__file__).with_name("gunicorn_conf.py")


def check_model(settings) -> str | None:
    """A clear reason why the configured model cannot be served, or None."""
    from service.contract import SAVED_MODEL_FILE, ModelLoadError, read_metadata
    from service.runtimes import RUNTIMES

    if settings.runtime not in RUNTIMES:
        return f"RUNTIME must be one of {', '.join(RUNTIMES)}, not {settings.runtime!r}"
    try:
        path = settings.resolved_model_dir()
        read_metadata(path)
        if not (path / SAVED_MODEL_FILE).is_file():
            return f"{path}: {SAVED_MODEL_FILE} is missing"
    except (FileNotFoundError, ModelLoadError) as e:
        return str(e)
    return None


def check_port(host: str, port: int) -> str | None:
    """A clear reason why host:port cannot be listened on, or None.

    gunicorn binds one SO_REUSEPORT socket per worker, and such a bind succeeds beside another server of
    the same user on the same port, which would then silently share the traffic. A plain bind tells.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # sockets in TIME_WAIT do not count
        try:
            probe.bind((host, port))
        except OSError as e:
            return f"cannot listen on {host}:{port}: {e.strerror or e}"
    return None


def serve(argv: list[str] | None = None) -> int:
    """Check the model, then replace this process with gunicorn (PID 1 in a container stays gunicorn)."""
    from service.config import Settings

    parser = argparse.ArgumentParser(
        prog="digits-serve",
        description="Serve the digit recognizer with gunicorn. "
        "Settings come from the environment: PORT, HOST, MODEL_DIR, WEB_CONCURRENCY...",
    )
    parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ValueError as e:
        print(f"digits-serve: cannot start: invalid setting: {e}", file=sys.stderr)
        return 2
    problem = check_model(settings) or check_port(settings.host, settings.port)
    if problem:
        print(f"digits-serve: cannot start: {problem}", file=sys.stderr)
        return 2
    args = [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF), APP]
    os.execv(sys.executable, args)
    return 0  # not reached


def _report(path: Path, probs, as_json: bool) -> str:
    digit, confidence = int(probs.argmax()), float(probs.max())
    if not as_json:
        return f"{path}: {digit} ({confidence:.1%})"
    return json.dumps(
        {
            "file": str(path),
            "digit": digit,
            "confidence": round(confidence, 6),
            "probabilities": [round(float(p), 6) for p in probs],
        }
    )


def predict(argv: list[str] | None = None) -> int:
    """Recognise image files with the same decoding and preprocessing as the service."""
    parser = argparse.ArgumentParser(prog="digits-predict", description=predict.__doc__)
    parser.add_argument("files", nargs="+", type=Path, help="image files (PNG, JPEG, GIF, BMP, WebP, TIFF)")
    parser.add_argument("--model-dir", help="SavedModel directory (default: $MODEL_DIR, else bundled cnn)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args(argv)

    from service.config import Settings
    from service.decoding import decode
    from service.errors import ApiError
    from service.predictor import ModelLoadError, Predictor
    from service.preprocessing import preprocess

    settings = Settings.from_env({**os.environ, **({"MODEL_DIR": args.model_dir} if args.model_dir else {})})
    try:
        predictor = Predictor(settings.resolved_model_dir(), runtime=settings.runtime)
    except (FileNotFoundError, ModelLoadError) as e:
        print(f"digits-predict: {e}", file=sys.stderr)
        return 2
    failures = 0
    for path in args.files:
        try:
            x = preprocess(decode(path.read_bytes(), settings.max_image_pixels))
        except (OSError, ApiError) as e:
            failures += 1
            print(f"{path}: error: {getattr(e, 'message', e)}", file=sys.stderr)
            continue
        print(_report(path, predictor.predict(x[None])[0], args.json))
    return 1 if failures else 0
