"""train/nondigits.py: non-digits for outlier exposure and for bench/ood_eval.py."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import require
from train import nondigits


@pytest.fixture(scope="module")
def fonts():
    missing = [
        p for split in nondigits.GLYPHS.values() for s in split.values() for p in s.fonts if not nondigits.font_files(p)
    ]
    require(
        not missing,
        f"fonts missing: {missing} (Debian: fonts-dejavu-core fonts-freefont-ttf fonts-liberation "
        "fonts-noto-core fonts-noto-cjk fonts-humor-sans fonts-breip fonts-femkeklaver fonts-comic-neue "
        "fonts-dkg-handwriting fonts-bwht fonts-kristi fonts-dancingscript fonts-tomsontalks)",
    )


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_every_source_makes_model_inputs_through_the_recipe(fonts, fixture_data, split):
    made = nondigits.dataset(split, 12, fixture_data.x_train, seed=1)
    assert set(made) == set(nondigits.sources(split, fixture_data.x_train))
    for name, x in made.items():
        assert x.shape == (12, 28, 28) and x.dtype == np.float32, name
        assert x.min() >= 0 and x.max() <= 255
        # the MNIST recipe: ink fitted into the 20x20 box, centred by mass near (14, 14)
        for image in x:
            rows, cols = np.nonzero(image > 0.3 * image.max())
            assert max(np.ptp(rows), np.ptp(cols)) >= 15, name
            mass = image / image.sum()
            centre = (mass.sum(1) @ np.arange(28), mass.sum(0) @ np.arange(28))
            assert abs(centre[0] - 14) < 2.5 and abs(centre[1] - 14) < 2.5, name


def test_held_out_sources_share_no_font_and_add_scripts_training_never_sees(fonts):
    def files(split):
        return {f for s in nondigits.GLYPHS[split].values() for p in s.fonts for f in nondigits.font_files(p)}

    def scripts(split):
        return {script for s in nondigits.GLYPHS[split].values() for script in s.scripts}

    assert files("train").isdisjoint(files("heldout"))
    assert len(scripts("heldout") - scripts("train")) >= 5


def test_typeset_digits_come_from_training_fonts_only_through_the_recipe(fonts):
    def files(split):
        return {f for p in nondigits.DIGIT_FONTS[split].fonts for f in nondigits.font_files(p)}

    held_out = {f for s in nondigits.GLYPHS["heldout"].values() for p in s.fonts for f in nondigits.font_files(p)}
    assert len(files("train")) >= 15 and files("train").isdisjoint(held_out) and files("heldout") <= held_out
    for split in ("train", "heldout"):
        assert {c for c, _ in nondigits.glyph_pairs(nondigits.DIGIT_FONTS[split])} == set("0123456789")
    x, labels = nondigits.typeset_digits(30, seed=2, split="heldout")
    assert x.shape == (30, 28, 28) and x.dtype == np.float32 and x.min() >= 0 and x.max() <= 255
    assert labels.shape == (30,) and set(labels) <= set(range(10)) and len(set(labels)) > 3
    np.testing.assert_array_equal(nondigits.font_digits(30, seed=2), nondigits.font_digits(30, seed=2))
    assert nondigits.font_digits(0, seed=2).shape == (0, 28, 28)


def test_characters_that_look_like_digits_are_never_used(fonts):
    for split in nondigits.GLYPHS.values():
        for source in split.values():
            chars = {c for c, _ in nondigits.glyph_pairs(source)}
            assert chars and not chars & nondigits.CONFUSABLE
            assert not chars & set("0123456789")


def test_the_same_seed_makes_the_same_set_and_validation_differs_from_training(fonts, fixture_data):
    a = nondigits.training_set(40, fixture_data.x_train, seed=3)
    np.testing.assert_array_equal(a, nondigits.training_set(40, fixture_data.x_train, seed=3))
    b = nondigits.validation_set(40, fixture_data.x_train, seed=3)
    assert a.shape == b.shape == (40, 28, 28) and not np.array_equal(a, b)
