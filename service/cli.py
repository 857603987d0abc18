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


def _report(path: Path, readings, accepted, as_json: bool) -> str:
    """One file's line: `FILE: 427 (4 99.8%, 2 97.1%, 7 99.9%)`, or `FILE: 7 (99.9%)` for one digit, a position
    that is not a digit as `?` (`FILE: 4?7 (4 99.8%, ? 31.0%, 7 99.9%)`); with `as_json` the first digit's fields
    (as before numbers were read), `number` (null where a position is not a digit) and `digits`, as /predict."""
    from service.errors import NotADigit

    digits = [r.digit if ok else None for r, ok in zip(readings, accepted, strict=True)]
    number = None if None in digits else "".join(map(str, digits))
    if not as_json:
        shown = ["?" if d is None else str(d) for d in digits]
        if len(readings) == 1:
            return f"{path}: {shown[0]} ({readings[0].confidence:.1%})"
        each = ", ".join(f"{d} {r.confidence:.1%}" for d, r in zip(shown, readings, strict=True))
        return f"{path}: {''.join(shown)} ({each})"

    def fields(r, digit: int | None) -> dict:
        out = {
            "digit": digit,
            "confidence": round(r.confidence, 6),
            "probabilities": [round(float(p), 6) for p in r.probabilities],
        }
        return out if digit is not None else out | {"reason": NotADigit.code}

    entries = [{**fields(r, d), "box": r.box._asdict()} for r, d in zip(readings, digits, strict=True)]
    return json.dumps({"file": str(path), **fields(readings[0], digits[0]), "number": number, "digits": entries})


def _accepted(readings, predictor) -> list[bool]:
    """Which readings are digits at all (the model's threshold); none: NotADigit, as /predict answers 422."""
    from service.errors import NotADigit
    from service.reading import accepted as digits_accepted

    accepted = digits_accepted(readings, predictor).tolist()
    if not any(accepted):
        raise NotADigit("this does not look like a digit")
    return accepted


def predict(argv: list[str] | None = None) -> int:
    """Recognise the digits (or numbers) in image files with the same decoding and reading as the service."""
    parser = argparse.ArgumentParser(prog="digits-predict", description=predict.__doc__)
    parser.add_argument("files", nargs="+", type=Path, help="image files (PNG, JPEG, GIF, BMP, WebP, TIFF)")
    parser.add_argument("--model-dir", help="SavedModel directory (default: $MODEL_DIR, else bundled cnn)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args(argv)

    from service.config import Settings
    from service.decoding import decode_sized
    from service.errors import ApiError
    from service.predictor import ModelLoadError, Predictor
    from service.reader import bundled
    from service.reading import read

    settings = Settings.from_env({**os.environ, **({"MODEL_DIR": args.model_dir} if args.model_dir else {})})
    try:
        predictor = Predictor(settings.resolved_model_dir(), runtime=settings.runtime)
        reader = bundled(settings)
    except (FileNotFoundError, ModelLoadError) as e:
        print(f"digits-predict: {e}", file=sys.stderr)
        return 2
    failures = 0
    for path in args.files:
        try:
            image = decode_sized(path.read_bytes(), settings.max_image_pixels)
            (readings,) = read([image], predictor, settings.max_digits, reader=reader)
            accepted = _accepted(readings, predictor)
        except (OSError, ApiError) as e:
            failures += 1
            print(f"{path}: error: {getattr(e, 'message', e)}", file=sys.stderr)
            continue
        print(_report(path, readings, accepted, args.json))
    return 1 if failures else 0
