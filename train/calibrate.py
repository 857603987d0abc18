"""`python -m train.calibrate models/cnn/2`: fit (again) an export's temperature and "not a digit" threshold on
validation data and record them in its metadata.json, with a reliability diagram in its report.

digits-train does this itself at the end of every export; this command is for exports made before, or to
re-fit after the non-digit sources change. The model's weights and files are not touched.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from service.contract import REPORT_DIR, read_metadata, rejection_method, write_metadata
from train.config import config_of
from train.data import load_mnist
from train.evaluate import predict_in_batches, savedmodel_predict
from train.trainer import calibrate_export, write_reliability


def recalibrate(model_dir: Path, data_dir: str | None) -> dict:
    metadata = read_metadata(model_dir)
    config = config_of(metadata)
    data = load_mnist(data_dir)
    predict = savedmodel_predict(str(model_dir))
    test_probs = predict_in_batches(predict, data.x_test)
    fitted, probs = calibrate_export(config, data, predict, test_probs, rejection_method(metadata))
    if not fitted:
        raise ValueError(f"{model_dir} was trained without validation images: nothing to calibrate on")
    if (model_dir / REPORT_DIR).is_dir():
        write_reliability(model_dir / REPORT_DIR, probs, data.y_test)
    write_metadata(model_dir, {**metadata, **fitted})
    return fitted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.calibrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dirs", nargs="+", type=Path, help="export version directories (models/cnn/2)")
    parser.add_argument("--data-dir", help="MNIST IDX directory (default: $MNIST_DIR, else Keras's download)")
    args = parser.parse_args(argv)
    for model_dir in args.model_dirs:
        fitted = recalibrate(model_dir, args.data_dir)
        print(model_dir, fitted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
