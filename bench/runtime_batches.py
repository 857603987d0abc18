"""Time of the default model's LiteRT runtime per batch size: is batching cheaper per image?

    python -m bench.runtime_batches            # writes bench/results/runtime_batches.json
    python -m bench.runtime_batches --quick    # smoke mode (CI): few calls, nothing saved

Server-side micro-batching only pays when a batch of n costs less than n single calls. This
measures the in-process runtime (no HTTP, no preprocessing) at batch sizes 1 to 256, with the
interpreter threads the service uses (service/runtimes.py: 1 below 16 images, 2 from 16 up).

It also sets the model's arithmetic rate against the machine's: the multiply-adds per image (read
from the LiteRT file), the rate LiteRT reaches on a batch of 256, and the rate numpy's BLAS reaches
on a large float32 matrix product on all cores, the best dense float32 arithmetic this machine does.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from bench.results import emit
from bench.timing import median_ms
from service.config import Settings
from service.contract import LITERT_FILE
from service.predictor import Predictor

SIZES = (1, 2, 4, 8, 16, 32, 64, 256)


def per_image_ms(predictor: Predictor, size: int, calls: int) -> float:
    x = np.random.default_rng(size).uniform(0, 255, (size, 28, 28)).astype(np.float32)
    return median_ms(lambda: predictor.predict(x), calls) / size  # the warm-up call sizes the interpreter


def macs_per_image(model_file: Path) -> int:
    """Multiply-adds of one image through the convolutions and dense layers of a LiteRT model."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model_file))
    interpreter.allocate_tensors()  # batch of 1: every shape below is per image
    shapes = {t["index"]: tuple(int(d) for d in t["shape"]) for t in interpreter.get_tensor_details()}
    total = 0
    for op in interpreter._get_ops_details():  # the op graph: no public API lists it
        if op["op_name"] == "CONV_2D":  # output [1, H, W, C_out] x filter [C_out, kH, kW, C_in] / C_out
            total += int(np.prod(shapes[op["outputs"][0]])) * int(np.prod(shapes[op["inputs"][1]][1:]))
        elif op["op_name"] == "FULLY_CONNECTED":  # weights [units, inputs]
            total += int(np.prod(shapes[op["inputs"][1]]))
        elif op["op_name"] in ("DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "BATCH_MATMUL"):
            raise ValueError(f"counting {op['op_name']} is not implemented")
    return total


def matmul_gmacs(side: int, calls: int) -> float:
    """Billions of multiply-adds per second of numpy's float32 [side, side] @ [side, side]."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((side, side), np.float32) for _ in range(2))
    return round(side**3 / median_ms(lambda: a @ b, calls) / 1e6, 1)


def run(quick: bool = False) -> dict:
    predictor = Predictor(Settings.from_env().resolved_model_dir())
    calls = {size: 3 if quick else max(10, 400 // size) for size in SIZES}
    ms = {str(size): round(per_image_ms(predictor, size, calls[size]), 3) for size in SIZES}
    macs = macs_per_image(Path(predictor.info.path) / LITERT_FILE)
    return {
        "model": {"name": predictor.info.name, "version": predictor.info.version},
        "runtime": predictor.runtime.name,
        "ms_per_image": ms,
        "macs_per_image": macs,
        "model_gmacs_at_256": round(macs / ms["256"] / 1e6, 1),
        "matmul_gmacs": matmul_gmacs(512 if quick else 2048, 3 if quick else 10),
        "measured_at": time.strftime("%Y-%m-%d"),
    }


def main(argv: list[str] | None = None) -> int:
    quick = "--quick" in (argv if argv is not None else sys.argv[1:])
    emit(run(quick), None if quick else "runtime_batches")
    return 0


if __name__ == "__main__":
    sys.exit(main())
