"""Where one canvas request's time goes: each stage alone, in process, plus the HTTP floor.

    python -m bench.request_parts            # writes bench/results/request_parts.json
    python -m bench.request_parts --quick    # smoke mode (CI): few calls, nothing saved

Each stage runs on the bench's canvas payload (a 280x280 PNG in a JSON data URL) and is timed
as the median of many calls; the whole request also with the CPU caches flushed before each call
(bench.timing.flush_caches), as they are, in part, between requests in a server. The HTTP floor
is wrk's p50 for GET /healthz on one connection to the production server: gunicorn, Flask and
the app's middleware with no work behind them.
The same stages are timed for serve_bench's 5-digit canvas (a 952x280 PNG) and its batch payload: 256 small
PNGs in one JSON body. The process's allocator is tuned as a server worker's is (service/allocator.py).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from bench.load import wrk
from bench.payloads import batch_json, canvas_json, canvas_png, number_json, number_png
from bench.results import emit
from bench.server import running_server
from bench.timing import flush_caches, median_ms
from service import inputs, segmentation
from service.allocator import keep_freed_memory
from service.config import Settings
from service.decoding import decode
from service.predictor import Predictor
from service.preprocessing import digit_input, image_ink, preprocess
from service.reader import bundled
from service.reading import read


def segment_and_preprocess(images: list[inputs.Submitted]) -> list:
    """Each image's digits found and turned into model inputs: the work of a request between decoding and the
    model, for images whose digits do not touch (no candidate cuts to read)."""
    return [digit_input(group.ink) for gray, *_ in images for group in segmentation.layout(image_ink(gray))]


def stages(settings: Settings, predictor: Predictor, calls: int, reader=None) -> dict:
    png, body = canvas_png(), canvas_json()
    gray = decode(png)
    x = preprocess(gray)[None]

    def whole() -> list[dict]:  # what /predict does between reading the body and writing JSON
        payload = inputs.parse_json(body, settings.max_json_depth)
        images, batch = inputs.json_to_grays(payload, settings.max_image_pixels, settings.max_batch)
        return read(images, predictor, settings.max_digits, batch, reader)

    return {
        "decode_ms": median_ms(lambda: decode(png), calls),
        "decode_pillow_only_ms": median_ms(lambda: decode(png, fast_png=False), calls),
        "preprocess_ms": median_ms(lambda: preprocess(gray), calls),
        "model_ms": median_ms(lambda: predictor.predict(x), calls),
        "whole_in_process_ms": median_ms(whole, calls),
        "whole_cold_caches_ms": median_ms(whole, max(3, calls // 5), between=flush_caches),
    }


def number_stages(settings: Settings, predictor: Predictor, calls: int, reader=None) -> dict:
    """The stages of a 5-digit canvas request, in process: decode, read (segment, preprocess, the model), whole."""
    png, body = number_png(), number_json()
    images = [inputs.decode(png, settings.max_image_pixels)]

    def whole() -> list:
        payload = inputs.parse_json(body, settings.max_json_depth)
        images, _ = inputs.json_to_grays(payload, settings.max_image_pixels, settings.max_batch)
        return read(images, predictor, settings.max_digits, reader=reader)

    return {
        "digits": len(read(images, predictor, settings.max_digits, reader=reader)[0]),
        "decode_ms": median_ms(lambda: decode(png), calls),
        "read_ms": median_ms(lambda: read(images, predictor, settings.max_digits, reader=reader), calls),
        "whole_in_process_ms": median_ms(whole, calls),
    }


def batch_stages(settings: Settings, predictor: Predictor, calls: int, count: int = 256) -> dict:
    """The stages of one batch request of `count` small PNGs, in process: decode, preprocess, model."""
    payload = inputs.parse_json(batch_json(count), settings.max_json_depth)
    images, _ = inputs.json_to_grays(payload, settings.max_image_pixels, settings.max_batch)
    x = np.stack(segment_and_preprocess(images))
    return {
        "images": count,
        "decode_ms": median_ms(lambda: inputs.json_to_grays(payload, settings.max_image_pixels, count), calls),
        "preprocess_ms": median_ms(lambda: segment_and_preprocess(images), calls),
        "model_ms": median_ms(lambda: predictor.predict(x), calls),
    }


def http_floor(seconds: float) -> float:
    with running_server({}) as (url, _):
        return round(wrk(f"{url}/healthz", b"", "text/plain", 1, seconds, threads=1, method="GET")["p50_ms"], 3)


def run(quick: bool = False) -> dict:
    keep_freed_memory()
    settings = Settings.from_env()
    predictor = Predictor(settings.resolved_model_dir())
    reader = bundled(settings)
    result = {
        **stages(settings, predictor, 20 if quick else 1000, reader),
        "http_floor_ms": http_floor(1 if quick else 5),
    }
    result["number"] = number_stages(settings, predictor, 20 if quick else 500, reader)
    result["batch"] = batch_stages(settings, predictor, 2 if quick else 30)
    return {**result, "measured_at": time.strftime("%Y-%m-%d")}


def main(argv: list[str] | None = None) -> int:
    quick = "--quick" in (argv if argv is not None else sys.argv[1:])
    emit(run(quick), None if quick else "request_parts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
