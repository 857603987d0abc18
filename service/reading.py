"""Reading whole numbers: images -> their digits, left to right, each through the MNIST recipe and the model.

All the digits of all the images of a request go to the model in one call; a second call reads, for the groups
of ink that may be digits that touch (segmentation.worth_cutting()), the candidate pieces that
segmentation.candidates() cuts them into. The line reader (service/reader.py), when the service has one, reads
each such group whole first: how many digits it holds and where one ends (a seam is added there), which
segmentation.choose() then splits it into; where the pieces read otherwise than the reader, its digits are taken.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from service import segmentation
from service.errors import NoDigit, TooManyDigits, batch_item
from service.preprocessing import INK, digit_input, image_ink
from service.reader import Read, Reader
from service.segmentation import SURE, Box, Candidates, Group

# gray float32 [H, W] 0..1, and the (height, width) it was submitted at; what follows (inputs.Submitted's bytes) is
# not read here
Image = tuple[np.ndarray, tuple[int, int]]


@dataclass(frozen=True)
class Reading:
    """One digit read: its box in the submitted image's pixels, the model's input, and the model's answer."""

    box: Box
    input: np.ndarray  # float32 [28, 28], 0..255, white on black
    probabilities: np.ndarray  # float64 [10], summing to 1

    @property
    def digit(self) -> int:
        return int(self.probabilities.argmax())

    @property
    def confidence(self) -> float:
        return float(self.probabilities.max())


def accepted(readings: Sequence[Reading], predictor) -> np.ndarray:
    """bool [N]: which readings of one image are digits at all, by the model's threshold (Predictor.is_digit()).
    Several readings are the positions of a number, held to the lower in-number threshold: any refused position
    refuses the whole number."""
    return predictor.is_digit(np.stack([r.probabilities for r in readings]), in_number=len(readings) > 1)


@dataclass
class _Candidates:
    """One group of ink on its way: its candidate digits (segmentation.candidates()'s keys), and the model input
    and probabilities of those read so far, with the classifier's own (Predictor.predict_parts()), which
    segmentation weighs."""

    group: Group
    found: Candidates
    read: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    own: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    reads: list[Read] | None = None  # the line reader's digits in the group (service/reader.py), if asked
    narrow: bool = False  # cut only because the line reader surely reads several digits in it (_several())

    @property
    def whole(self) -> tuple[int, int]:
        """The whole group's key among the candidates: from its left edge (cut 0) to its right edge."""
        return (0, len(self.found.lines) + 1)

    def cut(self, reader: Reader | None) -> None:
        """Add the candidate pieces of a wide group; the whole, already read, keeps its reading. The line reader,
        if any, reads the group whole: how many digits, and where one ends and the next begins."""
        hints: list[float] = []
        if reader is not None:
            self.reads = self.reads or reader.read(self.group.ink)
            hints = [(a.columns[1] + b.columns[0]) / 2 for a, b in pairwise(self.reads)]
        whole, own = self.read.pop((0, 1)), self.own.pop((0, 1))
        self.found = segmentation.candidates(self.group, hints)
        self.read[self.whole], self.own[self.whole] = whole, own

    def digits(self) -> list[tuple[Box, np.ndarray, np.ndarray]]:
        """Each digit of the group, left to right: its box (in the gray image), model input and probabilities.

        Without the line reader: the best split (segmentation.choose()), each piece as the model reads it. With
        it: the best split into as many digits as the reader reads, unless the best split keeps the group whole
        and the reader is less sure of a digit it reads than SURE, or than the model is of the whole (a wide digit
        drawn alone, read as two). Where the
        reader reads other digits than the model does in those pieces, its digits are taken: pieces cut from
        digits whose strokes cross carry bits of their neighbours, the reader saw the group whole. A single digit
        stays the model's, which reads one digit better than the reader."""
        split = segmentation.choose(self.group, self.found, self.own)
        reads = self.reads
        whole = float(self.own[self.whole].max())
        surest = max(SURE, whole)
        if reads and len(reads) != len(split) and (len(split) > 1 or min(r.confidence for r in reads) >= surest):
            counted = segmentation.choose(self.group, self.found, self.own, len(reads))
            if counted is None:  # no split into that many: the reader's digits in the columns it puts them
                return [(*self._columns(r.columns), r.probabilities) for r in reads]
            split = counted
        pieces = [(self.found.regions[key].box, *self.read[key]) for key in split]
        if not reads or len(reads) != len(pieces) or len(reads) == 1:
            return pieces
        if [int(p.argmax()) for _, _, p in pieces] == [r.digit for r in reads]:
            return pieces
        if self.narrow:  # the model reads its pieces otherwise: most likely one digit after all
            return [(self.group.box, *self.read[self.whole])]
        return [(box, x, r.probabilities) for (box, x, _), r in zip(pieces, reads, strict=True)]

    def _columns(self, columns: tuple[int, int]) -> tuple[Box, np.ndarray]:
        """The group's ink between two columns, cropped to its rows: (box, model input)."""
        group, (x0, x1) = self.group, columns
        ink = group.ink[:, x0:x1] if group.mask is None else np.where(group.mask[:, x0:x1], group.ink[:, x0:x1], 0)
        rows = np.flatnonzero(ink.max(axis=1, initial=0) > INK) if ink.size else np.array([], int)
        if rows.size == 0:  # nothing there: the whole group
            return group.box, digit_input(group.ink)
        top, bottom = int(rows[0]), int(rows[-1]) + 1
        box = Box(group.box.x + x0, group.box.y + top, ink.shape[1], bottom - top)
        return box, digit_input(ink[top:bottom].astype(np.float32))


@dataclass(frozen=True)
class _Page:
    """One image on its way: its groups of ink, and how its pixels map to the submitted image's."""

    groups: list[_Candidates]
    scale: tuple[float, float]  # submitted pixels per gray pixel: (rows, columns)
    size: tuple[int, int]  # the submitted image's (height, width)


def read(
    images: Sequence[Image], predictor, max_digits: int, batch: bool = False, reader: Reader | None = None
) -> list[list[Reading]]:
    """Each image's digits, left to right. NoDigit or TooManyDigits name the image's index in a batch. `reader`
    (service/reader.py) counts the digits of the groups that may be digits that touch."""
    pages = []
    for index, (gray, size, *_) in enumerate(images):
        with batch_item(index if batch else None):
            pages.append(_layout(gray, size, max_digits))
    groups = [group for page in pages for group in page.groups]
    _predict(predictor, groups)  # every group as one digit: one call for the whole request
    wide = [group for group in groups if segmentation.worth_cutting(group.group, group.own[(0, 1)])]
    if reader is not None:  # narrower groups that the line reader surely reads as several digits: a 1 that touches
        cut = {id(group) for group in wide}
        wide += [group for group in groups if id(group) not in cut and _several(group, reader)]
    for group in wide:
        group.cut(reader)
    _predict(predictor, wide)  # the candidate pieces of the groups that may be digits that touch
    results = []
    for index, page in enumerate(pages):
        with batch_item(index if batch else None):
            results.append(_readings(page, max_digits))
    return results


def _several(group: _Candidates, reader: Reader) -> bool:
    """Does the line reader surely read several digits in a group too narrow to be worth cutting otherwise?"""
    if not segmentation.worth_asking(group.group, group.own[(0, 1)]):
        return False
    group.reads = reader.read(group.group.ink)
    group.narrow = len(group.reads) > 1 and min(r.confidence for r in group.reads) >= SURE
    return group.narrow


def _layout(gray: np.ndarray, size: tuple[int, int], max_digits: int) -> _Page:
    ink = image_ink(gray)
    labels, stats = segmentation.components(ink)
    members = segmentation.groups(stats, ink.shape)
    if not members:
        raise NoDigit("no digit found: the image holds only specks")
    if len(members) > max_digits:  # before any work per digit
        raise TooManyDigits(f"found {len(members)} digits; the limit is {max_digits}")
    groups = segmentation.cut_out(ink, labels, stats, members)
    scale = (size[0] / gray.shape[0], size[1] / gray.shape[1])
    whole = [_Candidates(group, Candidates([], {(0, 1): group.region})) for group in groups]
    return _Page(whole, scale, size)


def _predict(predictor, groups: list[_Candidates]) -> None:
    """Read the candidate digits of `groups` not read yet, all in one model call."""
    todo = [(group, key) for group in groups for key in group.found.regions if key not in group.read]
    if not todo:
        return
    x = np.stack([digit_input(group.found.regions[key].ink) for group, key in todo])
    answers, own = predictor.predict_parts(x)
    for (group, key), row, p, q in zip(todo, x, answers, own, strict=True):
        group.read[key], group.own[key] = (row, p), q


def _readings(page: _Page, max_digits: int) -> list[Reading]:
    """The chosen digits of a page, left to right, with boxes in the submitted image's pixels."""
    out = []
    for group in page.groups:
        for box, x, p in group.digits():
            out.append(Reading(_submitted(box, page.scale, page.size), x, p))
    if len(out) > max_digits:
        raise TooManyDigits(f"found {len(out)} digits; the limit is {max_digits}")
    return out


def _submitted(box: Box, scale: tuple[float, float], size: tuple[int, int]) -> Box:
    """A box in the gray image -> the same box in the submitted image's pixels (covering it, within the image)."""
    sy, sx = scale
    x0, y0 = math.floor(box.x * sx), math.floor(box.y * sy)
    x1 = min(size[1], math.ceil((box.x + box.width) * sx))
    y1 = min(size[0], math.ceil((box.y + box.height) * sy))
    return Box(x0, y0, x1 - x0, y1 - y0)
