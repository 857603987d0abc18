"""Property-based fuzzing: any input gives a valid 28x28 model input or a typed error, nothing else."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from service import inputs
from service.decoding import decode
from service.errors import ApiError
from service.preprocessing import preprocess
from tests.images import drawn_one, encode

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SEEDS = [encode(drawn_one(size=64, width=6), fmt) for fmt in ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")]


def check_model_input(x: np.ndarray) -> None:
    assert x.shape == (28, 28) and x.dtype == np.float32
    assert np.isfinite(x).all() and x.min() >= 0 and x.max() <= 255.0001


def full_pipeline(blob: bytes) -> None:
    try:
        gray = decode(blob, max_pixels=4_000_000)
    except ApiError as e:
        assert e.status in (400, 413, 415)
        return
    assert gray.ndim == 2 and np.isfinite(gray).all() and gray.min() >= 0 and gray.max() <= 1
    try:
        check_model_input(preprocess(gray))
    except ApiError as e:
        assert e.status == 422


@FUZZ
@given(st.binary(max_size=4096))
def test_any_bytes(blob):
    full_pipeline(blob)


@FUZZ
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=12),
    st.integers(1, 10**6),
)
def test_mutated_real_images(seed, flips, cut):
    blob = bytearray(seed)
    for position, value in flips:
        blob[position % len(blob)] = value
    full_pipeline(bytes(blob[: max(1, cut % (len(blob) + 1))]))


@FUZZ
@given(arrays(np.float32, st.tuples(st.integers(1, 80), st.integers(1, 80)), elements=st.floats(0, 1, width=32)))
def test_any_grayscale_array(gray):
    try:
        check_model_input(preprocess(gray))
    except ApiError as e:
        assert e.status == 422


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)


@FUZZ
@given(st.dictionaries(st.sampled_from(["image", "pixels", "images", "x"]), json_values, max_size=3))
def test_any_json_payload(payload):
    try:
        grays, _ = inputs.json_to_grays(payload, max_pixels=4_000_000, max_batch=16)
    except ApiError as e:
        assert e.status in (400, 413, 415)
        return
    for gray, size, _ in grays:
        assert gray.ndim == 2 and np.isfinite(gray).all() and len(size) == 2
