"""Numbers written on the page with real input (mouse, touch, pen), read by the real server and the real model.

These need the number API of issue 13 (`number` and `digits` in /predict's answer): against a server that reads one
digit they fail, and are meant to be run once it has landed:
    PYTHONPATH=$PWD .venv/bin/python -m pytest -q tests/e2e/test_numbers.py
UPDATE_SCREENSHOT=1 rewrites the README's docs/screenshot.png (a number written and read).
How the page shows a number's answer, independently of the server, is tested in test_browser.py.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_browser import PHONE, arc, open_page, probabilities, touch_stroke, wait_idle

ROOT = Path(__file__).resolve().parents[2]

# Each digit as strokes of points in its own box: x across its width, y down its height (0..1), as a person writes
# it; the box is 0.6 times as wide as it is high. Several digits are in more than one stroke, as people write them.
GLYPHS = {
    "0": [arc(0.5, 0.5, 0.45, 0.48, -90, 270, 40)],
    "1": [[(0.58, 0.02), (0.5, 0.5), (0.42, 0.98)]],
    "2": [arc(0.5, 0.28, 0.42, 0.26, -160, 30, 16) + [(0.05, 0.97), (0.98, 0.97)]],
    "3": [arc(0.48, 0.26, 0.4, 0.24, -165, 90, 16) + arc(0.5, 0.72, 0.45, 0.26, -90, 160, 20)[1:]],
    "4": [[(0.68, 0.02), (0.02, 0.66), (0.98, 0.66)], [(0.72, 0.3), (0.72, 0.98)]],
    "5": [[(0.2, 0.03), (0.14, 0.45)] + arc(0.48, 0.68, 0.42, 0.28, -130, 150, 20), [(0.2, 0.03), (0.92, 0.03)]],
    "6": [[(0.8, 0.03), (0.45, 0.2), (0.22, 0.45)] + arc(0.52, 0.72, 0.36, 0.25, 180, 540, 24)],
    "7": [[(0.02, 0.04), (0.98, 0.04), (0.4, 0.98)]],
    "8": [arc(0.5, 0.26, 0.32, 0.24, 90, 450, 24), arc(0.5, 0.74, 0.42, 0.25, -90, 270, 28)],
    "9": [arc(0.5, 0.3, 0.42, 0.27, 0, 360, 24) + [(0.88, 0.6), (0.82, 0.98)]],
}
ASPECT = 0.6  # a digit's width / height
GAP = 0.35  # the space between two digits, in digit heights
STROKE = 0.13  # the brush's width, in digit heights (MNIST's digits: about 0.12)


def layout(page: Page, number: str, height: float = 0.55) -> list[dict]:
    """Where each digit of number goes on the canvas (page coordinates), centred, shrunk to fit its width."""
    pad = page.get_by_test_id("canvas").bounding_box()
    h = height * pad["height"]
    width = h * (len(number) * ASPECT + (len(number) - 1) * GAP)
    if width > 0.88 * pad["width"]:
        h *= 0.88 * pad["width"] / width
        width = 0.88 * pad["width"]
    left, top = pad["x"] + (pad["width"] - width) / 2, pad["y"] + (pad["height"] - h) / 2
    return [
        {"x": left + i * h * (ASPECT + GAP), "y": top, "width": h * ASPECT, "height": h} for i in range(len(number))
    ]


def glyph_strokes(digit: str, box: dict) -> list[list[tuple[float, float]]]:
    """A digit's strokes in page coordinates, in its box."""
    return [[(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in s] for s in GLYPHS[digit]]


def set_brush(page: Page, digit_height: float) -> None:
    """Choose, from the keyboard as a person would, the brush size that suits digits this high (CSS px)."""
    brush = page.get_by_test_id("brush")
    low, high = int(brush.get_attribute("min")), int(brush.get_attribute("max"))
    pad_height = page.get_by_test_id("canvas").bounding_box()["height"]
    size = min(high, max(low, round(STROKE * digit_height * 280 / pad_height)))  # app.js: size px per 280 px of height
    brush.focus()
    page.keyboard.press("Home")
    for _ in range(size - low):
        page.keyboard.press("ArrowRight")
    assert brush.input_value() == str(size)
    brush.blur()


def mouse_stroke(page: Page, points, steps: int = 4) -> None:
    page.mouse.move(*points[0])
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*point, steps=steps)
    page.mouse.up()


def pen_stroke(cdp, points, steps: int = 4) -> None:
    """A stylus stroke through Chromium's input pipeline: pointer events of type pen, with pressure."""
    pen = {"pointerType": "pen", "button": "left", "force": 0.5}
    cdp.send(
        "Input.dispatchMouseEvent",
        {"type": "mousePressed", "x": points[0][0], "y": points[0][1], "buttons": 1, "clickCount": 1, **pen},
    )
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        for i in range(1, steps + 1):
            x, y = x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps
            cdp.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y, "buttons": 1, **pen})
    x, y = points[-1]
    cdp.send(
        "Input.dispatchMouseEvent", {"type": "mouseReleased", "x": x, "y": y, "buttons": 0, "clickCount": 1, **pen}
    )


RECORD_POINTER_TYPES = """() => {
  window.__pointerTypes = [];
  document.querySelector('[data-testid=canvas]')
    .addEventListener('pointerdown', (e) => window.__pointerTypes.push(e.pointerType));
}"""


def write(page: Page, number: str, device: str = "mouse", height: float = 0.55) -> list[dict]:
    """Write number on the canvas with real input from device ("mouse", "touch" or "pen"); -> each digit's box."""
    boxes = layout(page, number, height)
    set_brush(page, boxes[0]["height"])
    page.evaluate(RECORD_POINTER_TYPES)
    cdp = page.context.new_cdp_session(page) if device != "mouse" else None
    strokes = [s for digit, box in zip(number, boxes, strict=True) for s in glyph_strokes(digit, box)]
    for points in strokes:
        if device == "touch":
            touch_stroke(cdp, points)
        elif device == "pen":
            pen_stroke(cdp, points)
        else:
            mouse_stroke(page, points)
    assert page.evaluate("window.__pointerTypes") == [device] * len(strokes)
    return boxes


def expect_number(page: Page, number: str, written: list[dict]) -> None:
    """The page reads number, boxes each digit where it was written, and shows each digit's probabilities."""
    expect(page.get_by_test_id("prediction")).to_have_text(number)
    wait_idle(page)
    expect(page.get_by_test_id("prediction")).to_have_text(number)
    boxes = page.get_by_test_id("digit-box")
    expect(boxes).to_have_count(len(number))
    for i, want in enumerate(written):
        got = boxes.nth(i).bounding_box()
        middle = (want["x"] + want["width"] / 2, want["y"] + want["height"] / 2)
        assert got["x"] <= middle[0] <= got["x"] + got["width"], (i, got, want)  # over the digit written there
        assert got["y"] <= middle[1] <= got["y"] + got["height"], (i, got, want)
        slack = 0.25 * want["height"]  # the brush's width, a rounding
        assert got["x"] >= want["x"] - slack and got["x"] + got["width"] <= want["x"] + want["width"] + slack
    expect(page.get_by_test_id("digit-tag")).to_have_text(list(number))
    top = lambda: max(range(10), key=probabilities(page).__getitem__)  # noqa: E731
    assert top() == int(number[0])  # the first digit is chosen to begin with
    first = page.get_by_test_id("model-input").get_attribute("src")
    page.get_by_role("radio").last.click()
    expect(page.get_by_role("radio").last).to_have_attribute("aria-checked", "true")
    assert top() == int(number[-1])
    if number[0] != number[-1]:
        expect(page.get_by_test_id("model-input")).not_to_have_attribute("src", first)


@pytest.mark.parametrize("number", ["42", "427", "1905", "386"])
def test_a_number_written_with_the_mouse_is_read(probe, live_server, number):
    page = probe.page
    open_page(page, live_server)
    written = write(page, number)
    expect_number(page, number, written)
    assert probe.errors == []


def test_a_number_written_with_a_finger_on_a_phone_is_read(new_page, live_server):
    probe = new_page(**PHONE)
    page = probe.page
    open_page(page, live_server)
    page.get_by_test_id("canvas").scroll_into_view_if_needed()
    written = write(page, "35", device="touch")
    expect(page.get_by_test_id("pad-readout")).to_contain_text("35")
    expect_number(page, "35", written)
    page.get_by_test_id("digit-tag").first.tap()  # a tap on a digit's tag chooses it
    expect(page.get_by_role("radio").first).to_have_attribute("aria-checked", "true")
    assert probe.errors == []


def test_a_number_written_with_a_pen_is_read(probe, live_server):
    page = probe.page
    open_page(page, live_server)
    written = write(page, "860", device="pen")
    expect_number(page, "860", written)


def test_ten_digits_written_small_with_a_thin_brush_are_read(probe, live_server):
    page = probe.page
    open_page(page, live_server)
    written = write(page, "3141592653", height=0.3)
    expect_number(page, "3141592653", written)


def test_undo_takes_the_last_digit_off_the_number(probe, live_server):
    page = probe.page
    open_page(page, live_server)
    write(page, "427")
    expect(page.get_by_test_id("prediction")).to_have_text("427")
    page.get_by_test_id("undo").click()  # the 7 was one stroke
    expect(page.get_by_test_id("prediction")).to_have_text("42")
    wait_idle(page)
    expect(page.get_by_test_id("digit-box")).to_have_count(2)


# The README's picture: the two cards under the header, down to just above the footer.
SCREENSHOT_VIEWPORT = {"width": 1280, "height": 800}
SCREENSHOT_CLIP = {"x": 40, "y": 0, "width": 1200, "height": 860}


def test_screenshot_for_the_readme(new_page, live_server, tmp_path):
    page = new_page(viewport=SCREENSHOT_VIEWPORT).page
    open_page(page, live_server)
    write(page, "427")
    expect(page.get_by_test_id("prediction")).to_have_text("427")
    wait_idle(page)
    page.get_by_test_id("digit-tag").nth(1).click()  # the 2 chosen: its box marked, its probabilities shown
    expect(page.get_by_role("radio").nth(1)).to_have_attribute("aria-checked", "true")
    clip = SCREENSHOT_CLIP
    for card in (".draw-card", ".result-card"):  # each card whole in the picture
        box = page.locator(card).bounding_box()
        assert clip["x"] <= box["x"] and box["x"] + box["width"] <= clip["x"] + clip["width"], (card, box)
        assert clip["y"] <= box["y"] and box["y"] + box["height"] <= clip["y"] + clip["height"], (card, box)
    path = ROOT / "docs" / "screenshot.png" if os.environ.get("UPDATE_SCREENSHOT") == "1" else tmp_path / "page.png"
    path.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(path), clip=clip, full_page=True, animations="disabled")  # the bars' transitions ended

    from PIL import Image

    data = path.read_bytes()
    assert len(data) < 200_000, len(data)
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG" and image.size == (clip["width"], clip["height"])
        shot = image.convert("L")
    # the drawn number and the predicted one are in the picture: strong contrast where each is, on light paper
    for hook in ("canvas", "prediction"):
        box = page.get_by_test_id(hook).bounding_box()
        left, top = box["x"] - clip["x"], box["y"] - clip["y"]
        region = shot.crop((round(left), round(top), round(left + box["width"]), round(top + box["height"])))
        darkest, lightest = region.getextrema()
        assert lightest - darkest > 120, (hook, darkest, lightest)
