"""Time of the default model's LiteRT runtime per batch size: is batching cheaper per image?

    python -m bench.runtime_batches            # writes bench/results/runtime_batches.json
    python -m bench.runtime_batches --quick    # smoke mode (CI): few calls, nothing saved

Server-side micro-batching only pays when a batch of n costs less than n single calls. This
measures the in-process runtime (no HTTP, no preprocessing) at batch sizes 1 to 256, with the
interpreter threads the service uses (1 below 16 images, 2 from 16 up).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from bench.results import emit
from bench.timing import median_ms
from service.config import Settings
from service.predictor import Predictor

SIZES = (1, 2, 4, 8, 16, 32, 64, 256)


def per_image_ms(predictor: Predictor, size: int, calls: int) -> float:
    x = np.random.default_rng(size).uniform(0, 255, (size, 28, 28)).astype(np.float32)
    return median_ms(lambda: predictor.predict(x), calls) / size  # the warm-up call sizes the interpreter


def run(quick: bool = False) -> dict:
    predictor = Predictor(Settings.from_env().resolved_model_dir())
    calls = {size: 3 if quick else max(10, 400 // size) for size in SIZES}
    return {
        "model": {"name": predictor.info.name, "version": predictor.info.version},
        "runtime": predictor.runtime.name,
        "ms_per_image": {str(size): round(per_image_ms(predictor, size, calls[size]), 3) for size in SIZES},
        "measured_at": time.strftime("%Y-%m-%d"),
    }


def main(argv: list[str] | None = None) -> int:
    quick = "--quick" in (argv if argv is not None else sys.argv[1:])
    emit(run(quick), None if quick else "runtime_batches")
    return 0


if __name__ == "__main__":
    sys.exit(main())
