"""bench/numbers_eval.py: the numbers it makes are what it says they are, and a run reports well-formed figures.

No accuracy is asserted here: the benchmark measures it (bench/RESULTS.md)."""

from __future__ import annotations

import io
import json
import math
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from bench import numbers_eval as ne
from service.preprocessing import dilate

COUNT = 60  # 12 of each length, 12 touching


@pytest.fixture(scope="module")
def made(fixture_data) -> list[ne.Number]:
    return list(ne.numbers(fixture_data.x_test, fixture_data.y_test, COUNT, seed=3))


def placed(number: ne.Number, i: int, shape: tuple[int, int]) -> np.ndarray:
    """Digit i's ink as a mask over the whole layout [H, W]."""
    (top, left), ink = number.places[i], number.inks[i]
    mask = np.zeros(shape, bool)
    mask[top : top + ink.shape[0], left : left + ink.shape[1]] = ink > 0.5
    return mask


def layout_shape(number: ne.Number) -> tuple[int, int]:
    pairs = list(zip(number.inks, number.places, strict=True))
    return max(t + i.shape[0] for i, (t, _) in pairs), max(left + i.shape[1] for i, (_, left) in pairs)


def test_plan_spreads_lengths_and_media_evenly_and_makes_one_number_in_five_touch():
    specs = ne.plan(100, seed=0)
    assert Counter(s.length for s in specs) == {n: 20 for n in ne.LENGTHS}
    assert Counter(s.medium for s in specs) == {"canvas": 50, "paper": 50}
    gaps = Counter(s.gap for s in specs)
    assert gaps["touching"] == 20 and sorted(gaps[g] for g in ("wide", "normal", "narrow")) == [26, 27, 27]


def test_each_number_has_its_digits_in_its_medium(made):
    for number in made:
        assert len(number.truth) == number.spec.length and number.truth.isdigit()
        assert len(number.inks) == len(number.places) == len(number.boxes) == len(number.heights) == number.spec.length
        image = Image.open(io.BytesIO(number.image))
        if number.spec.medium == "canvas":
            assert (image.format, image.height) == ("PNG", ne.CANVAS_HEIGHT) and image.width >= ne.CANVAS_HEIGHT
            assert number.style in ne.CANVAS_STYLES
        else:
            assert image.format == "JPEG" and number.style in ne.PAPER_STYLES
        for x, y, w, h in number.boxes:  # every digit inside the image
            assert 0 <= x <= x + w <= image.width and 0 <= y <= y + h <= image.height


def test_scans_are_dark_on_light_or_light_on_dark_as_recorded(made):
    for number in (n for n in made if n.spec.medium == "paper"):
        gray = np.asarray(Image.open(io.BytesIO(number.image)).convert("L"), np.float32) / 255
        x, y, w, h = number.boxes[0]
        paper, ink = np.median(gray[: max(1, y // 2)]), gray[y : y + h, x : x + w]
        if number.style == "dark-on-light":
            assert paper > 0.5 and ink.min() < paper - 0.25
        else:
            assert paper < 0.5 and ink.max() > paper + 0.25


def test_digits_go_left_to_right_with_the_gap_of_their_kind(made):
    for number in (n for n in made if n.spec.gap != "touching"):
        low, high = ne.GAPS[number.spec.gap]
        for (_, left_a), ink_a, (_, left_b) in zip(number.places, number.inks, number.places[1:], strict=False):
            gap = left_b - (left_a + ink_a.shape[1])
            assert round(low * number.height) <= gap <= round(high * number.height) and gap > 0


def test_touching_digits_really_touch(made):
    """In every touching number, each digit's ink is adjacent (8-connected) to or overlaps the ink before it: its
    left neighbour's, or, where that neighbour is a narrow 1 tucked under a wider digit, that digit's."""
    touching = [n for n in made if n.spec.gap == "touching"]
    assert len(touching) == COUNT // 5
    overlapping = 0
    for number in touching:
        shape = layout_shape(number)
        before = placed(number, 0, shape)
        for i in range(1, number.spec.length):
            ink = placed(number, i, shape)
            grown = dilate(before.astype(np.float32), 1)[1:-1, 1:-1] > 0  # one pixel wider all round
            assert (grown & ink).any(), f"{number.truth}: digit {i} touches none before it"
            overlapping += bool((before & ink).any())
            before |= ink
    assert overlapping > 0  # some strokes cross, not only meet


def test_heights_vary_within_the_jitter(made):
    varied = 0
    for number in made:
        ratios = np.array(number.heights) / number.height
        assert np.all(np.abs(ratios - 1) <= ne.JITTER + 1 / number.height)
        drawn = np.array([ink.shape[0] for ink in number.inks])
        # as drawn: the brush widens strokes by up to 6 px a side; faint tails fall below the strokes' threshold
        assert np.all(np.abs(drawn / number.height - 1) <= ne.JITTER + 0.15)
        varied += np.ptp(drawn) >= 0.05 * number.height
    assert varied >= 0.8 * len(made)


def test_baselines_follow_the_recorded_slope(made):
    slopes = [n.slope_deg for n in made]
    assert min(slopes) < -2 and max(slopes) > 2 and max(map(abs, slopes)) <= ne.MAX_SLOPE
    for number in made:
        rise = math.tan(math.radians(number.slope_deg))
        centres = np.array([left + ink.shape[1] / 2 for ink, (_, left) in zip(number.inks, number.places, strict=True)])
        bottoms = np.array([top + ink.shape[0] for ink, (top, _) in zip(number.inks, number.places, strict=True)])
        widths = np.array([ink.shape[1] for ink in number.inks])
        level = bottoms + rise * centres  # constant along a line rising `rise` to the right (rows grow downwards)
        spread = np.abs(level - np.median(level))
        # bottoms differ by the brush's rounding, and a touching digit's x is known only after its height is placed
        assert np.all(spread <= 3 + abs(rise) * widths), f"{number.truth} slope {number.slope_deg:.1f}"
        if number.spec.length >= 5 and number.spec.gap != "touching":
            fitted = -np.degrees(np.arctan(np.polyfit(centres, bottoms, 1)[0]))
            assert abs(fitted - number.slope_deg) < 1.5


def test_numbers_are_deterministic_for_a_seed(fixture_data):
    def images(seed: int) -> list[bytes]:
        return [n.image for n in ne.numbers(fixture_data.x_test, fixture_data.y_test, 10, seed)]

    assert images(5) == images(5)
    assert images(5) != images(6)


@pytest.mark.parametrize(
    ("truth", "read", "right"),
    [("427", "427", 3), ("427", "417", 2), ("427", "724", 1), ("427", "42", 0), ("427", "4271", 0), ("42", None, 0)],
)
def test_digits_are_scored_position_by_position_and_a_wrong_count_scores_none(truth, read, right):
    assert ne.score(truth, read) == right


@pytest.mark.parametrize(
    ("status", "answer", "read"),
    [
        (200, {"number": "427", "digit": 4}, "427"),
        (200, {"digit": 4, "confidence": 0.9}, "4"),  # a service that reads one digit
        (422, {"error": {"code": "no_digit", "message": "no digit found"}}, None),
    ],
)
def test_the_number_an_answer_reads(status, answer, read):
    assert ne.number_read(status, answer) == read


def test_a_run_reports_well_formed_figures(real_client, fixture_data, tmp_path):
    result = ne.evaluate(real_client, fixture_data.x_test, fixture_data.y_test, 15, seed=0, folder=tmp_path)
    specs = ne.plan(15, seed=0)
    assert result["numbers"] == 15 and result["digits"] == sum(s.length for s in specs)
    for group, key in (("by_length", "length"), ("by_gap", "gap"), ("by_medium", "medium")):
        assert {k: v["numbers"] for k, v in result[group].items()} == Counter(str(getattr(s, key)) for s in specs)
    for figures in [result, *(v for g in ("by_length", "by_gap", "by_medium") for v in result[g].values())]:
        accuracies = ("number_accuracy", "digit_accuracy", "alone_number_accuracy", "alone_digit_accuracy")
        assert all(0 <= figures[k] <= 1 for k in accuracies)
        assert 0 <= figures["wrong_count"] <= figures["numbers"]
    assert 0 <= result["answers_with_number"] <= 15 and sum(result["errors"].values()) <= 15
    if result["number_accuracy"] < 1:
        assert result["failure_examples"]
    for example in result["failure_examples"]:
        assert example["read"] != example["truth"] and Image.open(example["file"]).format == "PNG"


@pytest.mark.slow
def test_quick_command_prints_the_result_with_its_model_and_commit(mnist_fixture_dir, tmp_path, capsys):
    assert ne.main(["--quick", "--data-dir", str(mnist_fixture_dir), "--failures", str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["numbers"] == 40 and result["quick"] is True
    assert result["model"]["name"] == "cnn" and result["commit"] and result["machine"]["cores"] >= 1
