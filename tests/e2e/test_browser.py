"""The drawing page in a real browser: real pointer input, the real app and the real model.

Run: .venv/bin/python -m pytest tests/e2e -q   (TEST_MODEL_DIR=models/mlp/1 before models/cnn exists;
E2E_SCREENSHOT_DIR=/tmp to save page-desktop.png and page-phone.png). Numbers written with real input, and the
README's picture (UPDATE_SCREENSHOT=1), are in test_numbers.py.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import re
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Page, Request, Route, expect

ROOT = Path(__file__).resolve().parents[2]
THROTTLE_MS = 250  # app.js: at most one request every THROTTLE_MS while drawing

PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
}

# Digits as strokes of points in fractions (0..1) of the canvas's centred square (the whole canvas on a phone, its
# middle on a wide one), drawn like a person would write them.
ONE = [[(0.53, 0.16), (0.51, 0.5), (0.49, 0.84)]]
ZERO = [
    [
        (0.5 + 0.22 * math.sin(2 * math.pi * i / 40), 0.5 - 0.32 * math.cos(2 * math.pi * i / 40))
        for i in range(41)  # 40 points around, closed
    ]
]
SEVEN = [[(0.27, 0.2), (0.73, 0.2), (0.46, 0.84)]]
# With ONE, a bar to the left of its top makes a 7: undoing the bar must give the 1 back.
SEVEN_BAR = [[(0.24, 0.18), (0.53, 0.16)]]


def arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float, n: int) -> list[tuple[float, float]]:
    """n + 1 points along an elliptic arc from angle start to end (degrees, clockwise on screen from 3 o'clock)."""
    angles = [math.radians(start + (end - start) * i / n) for i in range(n + 1)]
    # a slight wobble, as a hand would draw it
    return [(cx + rx * (1 + 0.03 * math.sin(3 * a)) * math.cos(a), cy + ry * math.sin(a)) for a in angles]


def screenshot(page: Page, name: str) -> None:
    folder = os.environ.get("E2E_SCREENSHOT_DIR")
    if folder:
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def open_page(page: Page, base_url: str):
    response = page.goto(base_url + "/")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    return response


def canvas_point(page: Page, x: float, y: float) -> tuple[float, float]:
    """(x, y) in fractions of the canvas's centred square -> page coordinates."""
    box = page.get_by_test_id("canvas").bounding_box()
    assert box is not None
    side = min(box["width"], box["height"])
    return box["x"] + (box["width"] - side) / 2 + x * side, box["y"] + (box["height"] - side) / 2 + y * side


def draw(page: Page, strokes, steps: int = 6) -> None:
    """Real mouse input: press, move through every point in small steps, release."""
    for stroke in strokes:
        page.mouse.move(*canvas_point(page, *stroke[0]))
        page.mouse.down()
        for point in stroke[1:]:
            page.mouse.move(*canvas_point(page, *point), steps=steps)
        page.mouse.up()


def wait_idle(page: Page) -> None:
    """Until no request is pending or in flight (the result region's aria-busy is false)."""
    expect(page.locator("[aria-live]")).to_have_attribute("aria-busy", "false")


def probabilities(page: Page) -> list[float]:
    values = [page.get_by_test_id(f"prob-{d}").get_attribute("data-value") for d in range(10)]
    return [float(v) for v in values]


def expect_digit(page: Page, digit: int) -> None:
    expect(page.get_by_test_id("prediction")).to_have_text(str(digit))
    wait_idle(page)
    expect(page.get_by_test_id("prediction")).to_have_text(str(digit))
    probs = probabilities(page)
    assert max(range(10), key=probs.__getitem__) == digit, probs
    assert all(probs[digit] > p for d, p in enumerate(probs) if d != digit), probs
    assert 0.99 <= sum(probs) <= 1.01, probs


def expect_error_shown(page: Page, text) -> None:
    """The status line shows the error `text` (a string or a pattern), the page is idle and shows no prediction."""
    status = page.get_by_test_id("status")
    if isinstance(text, re.Pattern):
        expect(status).to_contain_text(text)
    else:
        expect(status).to_have_text(text)
    expect(status).to_have_class(re.compile("is-error"))
    wait_idle(page)
    expect_no_prediction(page)


def expect_no_prediction(page: Page) -> None:
    expect(page.get_by_test_id("prediction")).to_have_text("")
    for d in range(10):
        expect(page.get_by_test_id(f"prob-{d}")).to_have_attribute("data-value", "0")
    expect(page.get_by_test_id("model-input")).to_be_hidden()


def canvas_png(page: Page) -> str:
    return page.get_by_test_id("canvas").evaluate("c => c.toDataURL('image/png')")


def is_predict(url: str) -> bool:
    return urlparse(url).path == "/predict"


def sent_image(request: Request) -> str:
    """The canvas PNG (data URL) a drawing's /predict request carried."""
    return json.loads(request.post_data or "{}")["image"]


class Predictions:
    """The page's /predict requests, seen at the network; the server's responses can be held back or failed."""

    def __init__(self, page: Page):
        self.page = page
        self.sent: list[Request] = []
        self.mode = "pass"  # "pass": to the server; "hold": until release(); "fail": a network error
        self._held: list[Route] = []
        page.route(is_predict, self._route)

    def _route(self, route: Route) -> None:
        self.sent.append(route.request)
        if self.mode == "hold":
            self._held.append(route)
        elif self.mode == "fail":
            route.abort("connectionfailed")
        else:
            route.continue_()

    def wait_for(self, count: int, timeout: float = 10) -> None:
        """Until the page has sent `count` requests (events are handled while Playwright waits)."""
        deadline = time.monotonic() + timeout
        while len(self.sent) < count:
            assert time.monotonic() < deadline, f"{len(self.sent)} of {count} requests sent"
            self.page.wait_for_timeout(20)

    def assert_count(self, count: int) -> None:
        """Exactly `count` requests so far, and no other on its way (after a moment for events to arrive)."""
        self.page.wait_for_timeout(300)
        assert len(self.sent) == count, [r.url for r in self.sent]

    def release(self) -> None:
        """Let the held requests through to the server."""
        held, self._held = self._held, []
        for route in held:
            route.continue_()


@pytest.fixture
def predictions(page) -> Predictions:
    return Predictions(page)


@pytest.fixture
def paused_clock(page):
    """The page's timers and performance.now() stand still until the test moves them on (run_for)."""
    start = datetime(2025, 1, 1, 12, 0, 0)
    page.clock.install(time=start)
    page.clock.pause_at(start + timedelta(seconds=1))
    return page.clock


def test_page_loads_clean_with_hooks_and_no_prediction(probe, live_server):
    page = probe.page
    open_page(page, live_server)
    for hook in ("canvas", "clear", "undo", "upload", "brush", "model-input", "prediction"):
        expect(page.get_by_test_id(hook)).to_have_count(1)
    for d in range(10):
        expect(page.get_by_test_id(f"prob-{d}")).to_have_count(1)
    expect_no_prediction(page)
    canvas = page.get_by_test_id("canvas")
    expect(canvas).to_have_attribute("aria-label", re.compile(r"\S"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Draw a digit or a number")
    box = canvas.bounding_box()
    assert box["width"] >= 600 and box["width"] >= 1.4 * box["height"], box  # wide: room to write a number
    assert canvas.evaluate("c => getComputedStyle(c).touchAction") == "none"
    expect(page.locator("[aria-live=polite]")).to_have_count(1)
    expect(page.get_by_label("Brush size")).to_have_count(1)
    # the backing store follows the CSS size and devicePixelRatio, so strokes are crisp
    size = canvas.evaluate("c => [c.width, c.height, c.clientWidth, c.clientHeight, devicePixelRatio]")
    assert size[0] == round(size[2] * size[4]) and size[1] == round(size[3] * size[4]), size
    expect(page.locator("footer")).to_contain_text("LeCun")
    page.wait_for_load_state("networkidle")  # the model list, the icon: anything that could fail
    assert probe.errors == []
    assert probe.csp_violations() == []


@pytest.mark.parametrize(("digit", "strokes"), [(1, ONE), (0, ZERO), (7, SEVEN)], ids=["one", "zero", "seven"])
def test_drawing_a_digit_predicts_it(probe, live_server, digit, strokes):
    page = probe.page
    open_page(page, live_server)
    with page.expect_request(lambda r: "/predict" in r.url and r.method == "POST") as first:
        draw(page, strokes)
    request = first.value
    assert request.headers["content-type"].startswith("application/json")
    assert request.post_data_json["image"].startswith("data:image/png;base64,")
    expect_digit(page, digit)
    model_input = page.get_by_test_id("model-input")
    expect(model_input).to_be_visible()
    assert model_input.evaluate("i => i.naturalWidth === 28 && i.naturalHeight === 28 && i.complete")
    assert model_input.evaluate("i => getComputedStyle(i).imageRendering") == "pixelated"
    if digit == 7:
        screenshot(page, "page-desktop.png")
    assert probe.errors == []
    assert probe.csp_violations() == []


def prediction_starts(page: Page) -> list[float]:
    """When each /predict request started (ms, the browser's own resource timing)."""
    return page.evaluate(
        "performance.getEntriesByType('resource').filter(e => e.name.includes('/predict')).map(e => e.startTime)"
    )


def test_live_prediction_while_drawing_is_throttled(page, live_server):
    open_page(page, live_server)
    x, y = canvas_point(page, 0.5, 0.15)
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(1, 31):  # a slow downward stroke, about 1.5 s, button held
        page.mouse.move(*canvas_point(page, 0.5, 0.15 + 0.7 * i / 30), steps=2)
        page.wait_for_timeout(50)
    assert len(prediction_starts(page)) >= 2, "no live prediction while the stroke was still being drawn"
    expect(page.get_by_test_id("prediction")).not_to_have_text("")  # shown before the stroke ends
    page.mouse.up()
    expect_digit(page, 1)
    # at most one request every ~250 ms while drawing (the stroke's end may come sooner)
    starts = prediction_starts(page)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert all(gap >= 200 for gap in gaps[:-1]), gaps


def test_live_prediction_follows_the_clock_and_the_stroke_end(page, live_server, predictions, paused_clock):
    open_page(page, live_server)
    page.mouse.move(*canvas_point(page, 0.5, 0.15))
    page.mouse.down()
    predictions.assert_count(0)  # a press alone is no drawing yet
    with page.expect_response(lambda r: is_predict(r.url)):
        page.mouse.move(*canvas_point(page, 0.5, 0.3))  # the first move: sent at once
    page.mouse.move(*canvas_point(page, 0.5, 0.5), steps=4)
    predictions.assert_count(1)  # time stands still: the throttle holds the drawing back
    paused_clock.run_for(THROTTLE_MS - 1)
    predictions.assert_count(1)
    with page.expect_response(lambda r: is_predict(r.url)):
        paused_clock.run_for(1)  # THROTTLE_MS after the first: the drawing so far goes
    assert len(predictions.sent) == 2
    page.mouse.move(*canvas_point(page, 0.5, 0.85), steps=4)  # within THROTTLE_MS of the last request
    page.mouse.up()
    predictions.wait_for(3)  # the stroke's end goes at once, without waiting for the clock
    assert sent_image(predictions.sent[2]) == canvas_png(page)  # and carries the whole drawing
    expect_digit(page, 1)
    paused_clock.run_for(10 * THROTTLE_MS)
    predictions.assert_count(3)  # nothing was left pending


def test_one_request_in_flight_and_the_stroke_end_follows_it(page, live_server, predictions):
    predictions.mode = "hold"
    open_page(page, live_server)
    page.mouse.move(*canvas_point(page, 0.5, 0.15))
    page.mouse.down()
    for i in range(1, 21):  # about a second of drawing: room for four throttled requests
        page.mouse.move(*canvas_point(page, 0.5, 0.15 + 0.7 * i / 20), steps=2)
        page.wait_for_timeout(50)
    page.mouse.up()
    predictions.assert_count(1)  # the first is still out: neither the throttle nor the stroke's end sent another
    expect(page.locator("[aria-live]")).to_have_attribute("aria-busy", "true")
    predictions.release()
    predictions.wait_for(2)  # its answer is back: the finished stroke goes at once
    assert sent_image(predictions.sent[1]) == canvas_png(page)
    predictions.release()
    expect_digit(page, 1)
    predictions.assert_count(2)


def test_busy_ends_and_an_error_shows_when_the_server_is_unreachable(page, live_server, predictions):
    open_page(page, live_server)
    predictions.mode = "fail"
    draw(page, ONE)
    expect_error_shown(page, re.compile("Could not reach the server"))
    predictions.mode = "pass"  # the connection is back: the next stroke is predicted
    page.get_by_test_id("clear").click()
    draw(page, ONE)
    expect_digit(page, 1)
    expect(page.get_by_test_id("status")).not_to_have_class(re.compile("is-error"))


def test_clear_resets_prediction_and_bars(page, live_server):
    open_page(page, live_server)
    blank = canvas_png(page)
    draw(page, ONE)
    expect_digit(page, 1)
    page.get_by_test_id("clear").click()
    expect_no_prediction(page)
    wait_idle(page)
    expect_no_prediction(page)  # and no late response brings a prediction back
    assert canvas_png(page) == blank
    expect(page.get_by_test_id("undo")).to_be_disabled()


# Holds every /predict response back for 600 ms (body read first, so aborting cannot cancel it);
# <body data-late> counts the responses still held back.
SLOW_PREDICT = """
const realFetch = window.fetch;
let held = 0;
window.fetch = async (input, init) => {
  const response = await realFetch(input, init);
  if (!String(input).includes("/predict")) return response;
  document.body.dataset.late = String(++held);
  const body = await response.text();
  await new Promise((resolve) => setTimeout(resolve, 600));
  document.body.dataset.late = String(--held);
  return new Response(body, { status: response.status, headers: response.headers });
};
"""


def test_a_response_that_arrives_after_clear_is_dropped(page, live_server):
    page.add_init_script(SLOW_PREDICT)
    open_page(page, live_server)
    draw(page, ONE)
    held = int(page.locator("body").get_attribute("data-late") or 0)
    assert held > 0, "the stroke's prediction should still be on its way"
    page.get_by_test_id("clear").click()
    expect(page.locator("body")).to_have_attribute("data-late", "0")  # the late answer has come in
    expect_no_prediction(page)
    wait_idle(page)
    draw(page, ONE)  # and the page still works
    expect_digit(page, 1)


# Records every digit the page shows, from now on, in <body data-shown> (comma-separated).
RECORD_SHOWN = """() => {
  const prediction = document.querySelector('[data-testid=prediction]');
  document.body.dataset.shown = "";
  new MutationObserver(() => {
    if (prediction.textContent) document.body.dataset.shown += prediction.textContent + ",";
  }).observe(prediction, { childList: true, characterData: true, subtree: true });
}"""


def test_a_response_for_the_drawing_before_undo_is_dropped(page, live_server):
    page.add_init_script(SLOW_PREDICT)
    open_page(page, live_server)
    draw(page, ONE)
    expect_digit(page, 1)
    draw(page, SEVEN_BAR, steps=1)  # one move: one request, for the whole 7
    page.wait_for_function("() => document.body.dataset.late === '1'", polling="raf")  # the 7's answer is held back
    page.evaluate(RECORD_SHOWN)
    page.get_by_test_id("undo").click()
    expect(page.locator("body")).to_have_attribute("data-late", "0")  # the 7's answer has come in, and the 1's
    expect_digit(page, 1)
    assert page.locator("body").get_attribute("data-shown") == "1,"  # the late 7 was never shown


def test_undo_removes_the_last_stroke(page, live_server):
    open_page(page, live_server)
    draw(page, ONE)
    expect_digit(page, 1)
    one = canvas_png(page)
    draw(page, SEVEN_BAR)
    expect_digit(page, 7)
    page.get_by_test_id("undo").click()
    expect_digit(page, 1)
    assert canvas_png(page) == one
    page.get_by_test_id("undo").click()  # the last stroke: nothing left, so no prediction
    expect_no_prediction(page)
    expect(page.get_by_test_id("undo")).to_be_disabled()


def test_blank_drawing_shows_a_hint_not_an_error(page, live_server):
    open_page(page, live_server)
    brush = page.get_by_test_id("brush")
    brush.focus()
    page.keyboard.press("Home")  # the thinnest brush, chosen from the keyboard
    assert brush.input_value() == brush.get_attribute("min")
    with page.expect_response(lambda r: "/predict" in r.url) as answer:
        page.mouse.click(*canvas_point(page, 0.5, 0.5))  # a speck, not a digit
    assert answer.value.status == 422
    assert answer.value.json()["error"]["code"] == "no_digit"
    wait_idle(page)
    expect_no_prediction(page)
    status = page.get_by_test_id("status")
    expect(status).to_contain_text("No digit")
    expect(status).not_to_have_class(re.compile("is-error"))


def digit_png(path: Path) -> Path:
    """A 4 as a person would write it with a marker: black strokes on white paper, 200x200."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (200, 200), "white")
    pen = ImageDraw.Draw(image)
    pen.line([(118, 30), (50, 122), (160, 122)], fill="black", width=14, joint="curve")
    pen.line([(122, 72), (122, 175)], fill="black", width=14)
    image.save(path)
    return path


def test_upload_an_image(page, live_server, tmp_path):
    open_page(page, live_server)
    with page.expect_response(lambda r: "/predict" in r.url) as answer:
        page.get_by_test_id("upload").set_input_files(str(digit_png(tmp_path / "four.png")))
    assert answer.value.request.headers["content-type"].startswith("multipart/form-data")
    assert answer.value.status == 200
    expect_digit(page, 4)
    expect(page.get_by_test_id("model-input")).to_be_visible()
    expect(page.get_by_test_id("status")).to_contain_text("four.png")
    draw(page, ONE)  # drawing afterwards replaces the upload's result
    expect_digit(page, 1)


def touch_stroke(cdp, points: list[tuple[float, float]], steps: int = 5) -> None:
    """A real touch stroke through Chromium's input pipeline (touchstart/move/end -> pointer events)."""
    (x, y) = points[0]
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        for i in range(1, steps + 1):
            x, y = x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def test_phone_layout_and_touch_drawing(new_page, live_server):
    probe = new_page(**PHONE)
    page = probe.page
    open_page(page, live_server)
    width = page.viewport_size["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # no horizontal scroll
    canvas = page.get_by_test_id("canvas")
    box = canvas.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, box
    assert box["width"] >= 0.75 * width, box  # it uses the phone's width
    assert 0.8 <= box["width"] / box["height"] <= 1.25, box  # and stays square-ish: room to write, no scrolling
    for hook in ("clear", "undo", "upload"):
        assert page.get_by_test_id(hook).evaluate("e => e.getBoundingClientRect().right") <= width
    canvas.scroll_into_view_if_needed()
    page.evaluate("""() => {
        window.__pointerTypes = [];
        document.querySelector('[data-testid=canvas]')
          .addEventListener('pointerdown', (e) => window.__pointerTypes.push(e.pointerType));
    }""")
    scroll_before = page.evaluate("[scrollX, scrollY]")
    cdp = page.context.new_cdp_session(page)
    for stroke in SEVEN:
        touch_stroke(cdp, [canvas_point(page, x, y) for x, y in stroke])
    expect_digit(page, 7)
    assert page.evaluate("window.__pointerTypes") == ["touch"]
    readout = page.get_by_test_id("pad-readout")  # the result card is below the fold: the pad echoes the number
    expect(readout).to_be_visible()
    expect(readout).to_contain_text("7")
    assert readout.bounding_box()["y"] >= box["y"] + box["height"]  # under the drawing, not over it
    assert page.evaluate("[scrollX, scrollY]") == scroll_before  # drawing did not scroll the page
    assert page.evaluate("visualViewport.scale") == 1  # nor zoom it
    screenshot(page, "page-phone.png")
    assert probe.errors == []
    assert probe.csp_violations() == []


def test_csp_header_and_no_inline_code(page, live_server):
    response = open_page(page, live_server)
    csp = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp and "style-src 'self'" in csp, csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp
    assert page.locator("script:not([src])").count() == 0
    assert page.locator("style").count() == 0
    html = page.request.get(live_server + "/").text()
    assert not re.search(r"\sstyle\s*=", html), "inline style attribute"
    assert not re.search(r"\son[a-z]+\s*=", html, re.IGNORECASE), "inline event handler"
    # every script and stylesheet is served by the app itself, none from a CDN
    sources = page.eval_on_selector_all("script[src], link[href]", "els => els.map(e => e.src || e.href)")
    assert sources and all(s.startswith(live_server + "/static/") for s in sources), sources


def test_model_selector_switches_the_model(page, live_server):
    models = page.request.get(live_server + "/v1/models").json()
    others = [m["name"] for m in models["models"] if m["name"] != models["default"]]
    if not others:
        pytest.skip("only one model is exported: nothing to choose")
    open_page(page, live_server)
    select = page.get_by_test_id("model")
    expect(select).to_have_value(models["default"])
    draw(page, ONE)
    expect_digit(page, 1)
    expect(page.get_by_test_id("model-name")).to_contain_text(models["default"])
    with page.expect_request(lambda r: "/predict" in r.url) as sent:
        select.select_option(others[0])  # the drawing is predicted again by the chosen model
    assert f"model={others[0]}" in sent.value.url
    expect(page.get_by_test_id("model-name")).to_contain_text(others[0])
    expect_digit(page, 1)


def test_model_selector_sends_the_upload_again(page, live_server, tmp_path):
    models = page.request.get(live_server + "/v1/models").json()
    others = [m["name"] for m in models["models"] if m["name"] != models["default"]]
    if not others:
        pytest.skip("only one model is exported: nothing to choose")
    open_page(page, live_server)
    page.get_by_test_id("upload").set_input_files(str(digit_png(tmp_path / "four.png")))
    expect_digit(page, 4)
    with page.expect_request(lambda r: is_predict(r.url)) as sent:
        page.get_by_test_id("model").select_option(others[0])
    assert f"model={others[0]}" in sent.value.url
    assert sent.value.headers["content-type"].startswith("multipart/form-data")  # the file again, not the canvas
    expect(page.get_by_test_id("model-name")).to_contain_text(others[0])
    expect(page.get_by_test_id("status")).to_contain_text("four.png")
    expect_digit(page, 4)


# ---- numbers: how the page shows an answer of several digits ----
# /predict is answered here, in the API's shape (`number`, `digits` with each box in the submitted image's pixels),
# with boxes at fixed fractions of whatever image the page sent: the test knows where each box must appear.
# Real numbers, written with real input and read by the real server, are in test_numbers.py.


def png_size(data: bytes) -> tuple[int, int]:
    """A PNG's width and height, from its IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:8]
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def input_png(index: int) -> str:
    """A 28x28 stand-in for a digit's model input, different for each index (a bar at another height)."""
    from PIL import Image

    image = Image.new("L", (28, 28), 0)
    image.paste(255, (4, 2 + 5 * index, 24, 6 + 5 * index))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def spread(digit: int, confidence: float, runner_up: int, second: float) -> list[float]:
    """Ten probabilities: `confidence` on digit, `second` on runner_up, the rest shared evenly."""
    rest = (1 - confidence - second) / 8
    return [confidence if d == digit else second if d == runner_up else rest for d in range(10)]


# (digit, confidence, runner-up, its probability, box as fractions of the image: x, y, width, height)
NUMBER_427 = [
    (4, 0.98, 9, 0.012, (0.08, 0.22, 0.2, 0.56)),
    (2, 0.9, 7, 0.06, (0.4, 0.3, 0.18, 0.5)),
    (7, 0.45, 1, 0.4, (0.7, 0.0, 0.16, 0.7)),  # from the top edge: no room above it for its tag
]


def number_answer(width: int, height: int) -> dict:
    """The API's answer for "427" read from an image of width x height pixels."""
    digits = [
        {
            "digit": d,
            "confidence": c,
            "probabilities": spread(d, c, r, q),
            "box": {
                "x": round(x * width),
                "y": round(y * height),
                "width": round(w * width),
                "height": round(h * height),
            },
            "input": input_png(i),
        }
        for i, (d, c, r, q, (x, y, w, h)) in enumerate(NUMBER_427)
    ]
    first = digits[0]
    return {
        "number": "".join(str(d["digit"]) for d in digits),
        "digits": digits,
        **{key: first[key] for key in ("digit", "confidence", "probabilities", "input")},
        "model": {"name": "cnn", "version": 1},
    }


class NumberAnswers:
    """Answers the page's /predict requests with "427", boxed in the pixels of the image each request carries."""

    def __init__(self, page: Page, upload_size: tuple[int, int] = (0, 0)):
        self.upload_size = upload_size  # an uploaded file's size: the test made it
        self.answers: list[dict] = []
        page.route(is_predict, self._route)

    def _route(self, route: Route) -> None:
        request = route.request
        if request.headers.get("content-type", "").startswith("application/json"):
            size = png_size(base64.b64decode(sent_image(request).split(",", 1)[1]))
        else:
            size = self.upload_size
        self.answers.append(number_answer(*size))
        route.fulfill(json=self.answers[-1])

    @property
    def last(self) -> dict:
        return self.answers[-1]


def canvas_content(page: Page) -> dict:
    """The canvas's content box on the page (CSS px) and its backing store's size (pixels)."""
    return page.get_by_test_id("canvas").evaluate("""c => {
        const r = c.getBoundingClientRect();
        return { x: r.left + c.clientLeft, y: r.top + c.clientTop, width: c.clientWidth, height: c.clientHeight,
                 pixels: [c.width, c.height] };
    }""")


def expect_boxes_at(page: Page, expected: list[dict]) -> None:
    """One box per digit, each at its expected place on the page (CSS px, within a pixel and a half)."""
    boxes = page.get_by_test_id("digit-box")
    expect(boxes).to_have_count(len(expected))
    for i, want in enumerate(expected):
        got = boxes.nth(i).bounding_box()
        assert all(abs(got[k] - want[k]) <= 1.5 for k in ("x", "y", "width", "height")), (i, got, want)


def on_canvas(page: Page, answer: dict) -> list[dict]:
    """Where the answer's boxes belong on the page when the whole canvas was sent: canvas pixels -> CSS px."""
    c = canvas_content(page)
    sx, sy = c["width"] / c["pixels"][0], c["height"] / c["pixels"][1]
    return [
        {"x": c["x"] + b["x"] * sx, "y": c["y"] + b["y"] * sy, "width": b["width"] * sx, "height": b["height"] * sy}
        for b in (d["box"] for d in answer["digits"])
    ]


def expect_selected(page: Page, answer: dict, index: int) -> None:
    """The digit at index is the chosen one: checked, its box marked, its confidence, bars and model input shown."""
    digit, n = answer["digits"][index], len(answer["digits"])
    radios = page.get_by_role("radio")
    expect(radios).to_have_count(n)
    for i in range(n):
        expect(radios.nth(i)).to_have_attribute("aria-checked", "true" if i == index else "false")
        marked = expect(page.get_by_test_id("digit-box").nth(i))
        (marked.to_have_class if i == index else marked.not_to_have_class)(re.compile(r"\bis-selected\b"))
    expect(page.get_by_test_id("confidence")).to_have_text(re.compile(rf"^Digit {index + 1} of {n}: \d"))
    expect(page.get_by_test_id("model-input")).to_have_attribute("src", digit["input"])
    expect(page.get_by_test_id(f"prob-{digit['digit']}")).to_have_class(re.compile(r"\bis-top\b"))
    assert probabilities(page) == pytest.approx(digit["probabilities"], abs=1e-4)


def test_a_number_is_shown_with_each_digit_boxed_over_the_drawing(new_page, live_server):
    probe = new_page(device_scale_factor=2)  # the canvas has twice as many pixels as CSS pixels
    page = probe.page
    answers = NumberAnswers(page)
    open_page(page, live_server)
    draw(page, ONE)
    expect(page.get_by_test_id("prediction")).to_have_text("427")
    wait_idle(page)
    canvas = canvas_content(page)
    assert canvas["pixels"][0] == round(2 * canvas["width"]), canvas
    expect_boxes_at(page, on_canvas(page, answers.last))
    tags = page.get_by_test_id("digit-tag")
    expect(tags).to_have_text(["4", "2", "7"])
    # the 7's box starts at the canvas's top: its tag is inside the box; the others' sit above theirs
    boxes = [page.get_by_test_id("digit-box").nth(i).bounding_box() for i in range(3)]
    assert tags.nth(2).bounding_box()["y"] >= boxes[2]["y"]
    assert tags.nth(0).bounding_box()["y"] + tags.nth(0).bounding_box()["height"] <= boxes[0]["y"]
    expect_selected(page, answers.last, 0)  # the first digit, by default
    expect(page.get_by_test_id("probs-title")).to_have_text("Probabilities of digit 1")
    status = page.get_by_test_id("status")
    expect(status).to_contain_text("3 digits")
    expect(status).to_contain_text("Not sure of digit 3")  # the 7 is read with 45%

    tags.nth(1).click()  # a box's tag
    expect_selected(page, answers.last, 1)
    page.get_by_role("radio", name="7").click()  # a character of the number
    expect_selected(page, answers.last, 2)
    # the keyboard: the number is one tab stop, the arrows, Home and End choose within it
    page.keyboard.press("Home")
    expect_selected(page, answers.last, 0)
    expect(page.get_by_role("radio", name="4")).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect_selected(page, answers.last, 1)
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")  # round, as in any radio group
    expect_selected(page, answers.last, 2)
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")
    expect(page.get_by_role("radio", name="7")).to_be_focused()  # the tab stop is the chosen digit

    # a stroke that starts inside a box draws: the boxes let the pen through to the canvas
    tags.nth(1).click()
    before, count = canvas_png(page), len(answers.answers)
    box = boxes[1]
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] - 4, steps=4)
    page.mouse.up()
    wait_idle(page)
    assert canvas_png(page) != before and len(answers.answers) > count
    expect_selected(page, answers.last, 1)  # a live update of the same drawing keeps the digit chosen
    page.get_by_test_id("clear").click()
    expect_no_prediction(page)
    expect(page.get_by_test_id("digit-box")).to_have_count(0)
    expect(page.get_by_role("radio")).to_have_count(0)
    assert probe.errors == []
    assert probe.csp_violations() == []


def test_an_answer_without_digits_is_one_digit_boxed_by_the_whole_canvas(page, live_server):
    """Today's API (no `number`, no `digits`): the page reads one digit, as before numbers."""
    probs = spread(7, 0.93, 1, 0.05)
    answer = {"digit": 7, "confidence": 0.93, "probabilities": probs, "input": input_png(0)}
    answer["model"] = {"name": "cnn", "version": 1}
    page.route(is_predict, lambda route: route.fulfill(json=answer))
    open_page(page, live_server)
    draw(page, SEVEN)
    expect(page.get_by_test_id("prediction")).to_have_text("7")
    wait_idle(page)
    expect(page.get_by_test_id("confidence")).to_have_text("93% confident")
    expect(page.get_by_test_id("probs-title")).to_have_text("Probabilities")
    expect(page.get_by_test_id("model-input")).to_have_attribute("src", answer["input"])
    assert probabilities(page) == pytest.approx(probs, abs=1e-4)
    c = canvas_content(page)
    expect_boxes_at(page, [{k: c[k] for k in ("x", "y", "width", "height")}])
    expect(page.get_by_test_id("status")).to_have_text("")


def number_png(path: Path) -> Path:
    """ "427" written with a marker across a 360x120 strip of white paper."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (360, 120), "white")
    pen = ImageDraw.Draw(image)
    pen.line([(70, 20), (35, 75), (95, 75)], fill="black", width=8, joint="curve")
    pen.line([(75, 50), (75, 105)], fill="black", width=8)
    pen.arc((150, 18, 200, 62), 180, 20, fill="black", width=8)
    pen.line([(197, 48), (148, 102), (205, 102)], fill="black", width=8, joint="curve")
    pen.line([(255, 20), (315, 20), (280, 105)], fill="black", width=8, joint="curve")
    image.save(path)
    return path


def test_an_uploaded_number_is_shown_on_the_pad_with_its_boxes(page, live_server, tmp_path):
    answers = NumberAnswers(page, upload_size=(360, 120))
    open_page(page, live_server)
    blank = canvas_png(page)
    page.get_by_test_id("upload").set_input_files(str(number_png(tmp_path / "number.png")))
    expect(page.get_by_test_id("prediction")).to_have_text("427")
    expect(page.get_by_test_id("status")).to_contain_text("number.png")
    # the picture is drawn on the pad, contained and centred, and each box lies over it where the answer says
    c = canvas_content(page)
    scale = min(c["width"] / 360, c["height"] / 120)
    left, top = c["x"] + (c["width"] - 360 * scale) / 2, c["y"] + (c["height"] - 120 * scale) / 2
    boxes = [d["box"] for d in answers.last["digits"]]
    expect_boxes_at(
        page,
        [
            {
                "x": left + b["x"] * scale,
                "y": top + b["y"] * scale,
                "width": b["width"] * scale,
                "height": b["height"] * scale,
            }
            for b in boxes
        ],
    )
    assert canvas_png(page) != blank
    page.get_by_test_id("digit-tag").nth(2).click()
    expect_selected(page, answers.last, 2)
    draw(page, ONE)  # drawing replaces the upload: the picture goes, the drawing's answer is boxed on the canvas
    expect(page.get_by_test_id("status")).not_to_contain_text("number.png")
    wait_idle(page)
    expect_boxes_at(page, on_canvas(page, answers.last))
    expect_selected(page, answers.last, 0)


def test_phone_tapping_a_digit_tag_chooses_it(new_page, live_server):
    probe = new_page(**PHONE)
    page = probe.page
    answers = NumberAnswers(page)
    open_page(page, live_server)
    cdp = page.context.new_cdp_session(page)
    for stroke in ONE:
        touch_stroke(cdp, [canvas_point(page, x, y) for x, y in stroke])
    expect(page.get_by_test_id("pad-readout")).to_contain_text("427")
    wait_idle(page)
    expect_boxes_at(page, on_canvas(page, answers.last))
    page.get_by_test_id("digit-tag").nth(1).tap()
    expect_selected(page, answers.last, 1)
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]
    assert probe.errors == []


def test_too_many_digits_is_explained(page, live_server):
    error = {"error": {"code": "too_many_digits", "message": "found 23 digits; the limit is 20"}}
    page.route(is_predict, lambda route: route.fulfill(status=422, json=error))
    open_page(page, live_server)
    draw(page, ONE)
    expect_error_shown(page, "Too many digits: found 23 digits; the limit is 20")
    expect(page.get_by_test_id("digit-box")).to_have_count(0)


INK_BOX = """c => {
  // the bounding box of the dark pixels, in fractions of the canvas: [left, top, right, bottom]
  const { width, height } = c;
  const data = c.getContext("2d").getImageData(0, 0, width, height).data;
  let [left, top, right, bottom] = [width, height, -1, -1];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (data[4 * (y * width + x)] < 128) {
        left = Math.min(left, x); right = Math.max(right, x); top = Math.min(top, y); bottom = Math.max(bottom, y);
      }
    }
  }
  return [left / width, top / height, (right + 1) / width, (bottom + 1) / height, width / height];
}"""


# Resolves once the canvas's backing store is square (after the window has changed shape).
UNTIL_SQUARE = """c => new Promise((done) => {
  const check = () => (c.width === c.height ? done() : setTimeout(check, 20));
  check();
})"""


def test_the_drawing_keeps_its_shape_when_the_pad_changes_shape(page, live_server, predictions):
    open_page(page, live_server)  # a wide window: a wide pad
    draw(page, ZERO)
    expect_digit(page, 0)
    left, top, right, bottom, wide = page.get_by_test_id("canvas").evaluate(INK_BOX)
    shape = (right - left) * wide / (bottom - top)  # the ink's width / height
    count = len(predictions.sent)
    page.set_viewport_size({"width": 500, "height": 900})  # a phone-sized window: a square pad
    canvas = page.get_by_test_id("canvas")
    canvas.evaluate(UNTIL_SQUARE)
    predictions.wait_for(count + 1)  # read again: the boxes were for the other shape
    expect_digit(page, 0)
    left, top, right, bottom, square = canvas.evaluate(INK_BOX)
    assert square == 1
    assert min(left, top) >= 0 and max(right, bottom) <= 1  # all of it still on the pad
    assert (right - left) / (bottom - top) == pytest.approx(shape, rel=0.05)  # not squeezed


def test_not_a_digit_is_said_and_the_guesses_are_greyed(page, live_server):
    """422 not_a_digit (issue 14): the page says so, shows "?" and the model's guesses, greyed."""
    probs = spread(4, 0.31, 9, 0.2)
    guess = {"digit": None, "reason": "not_a_digit", "confidence": 0.31, "probabilities": probs, "box": None}
    error = {"code": "not_a_digit", "message": "this does not look like a digit"}
    error["details"] = {"probabilities": probs, "confidence": 0.31, "digits": [guess]}
    page.route(is_predict, lambda route: route.fulfill(status=422, json={"error": error}))
    open_page(page, live_server)
    draw(page, SEVEN)
    expect(page.get_by_test_id("status")).to_contain_text("doesn't look like a digit")
    expect(page.get_by_test_id("prediction")).to_have_text("?")
    expect(page.get_by_test_id("confidence")).to_have_text("not a digit (best guess 4, 31%)")
    assert probabilities(page) == pytest.approx(probs, abs=1e-4)
    expect(page.get_by_test_id("pad-readout")).to_have_class(re.compile(r"\bis-refused\b"))
    expect(page.get_by_test_id("digit-box")).to_have_class(re.compile(r"\bis-refused\b"))


def test_a_position_that_is_not_a_digit_shows_as_a_question_mark(page, live_server):
    """A number with one position refused: "4?" with that position's guesses greyed when chosen."""
    four, other = spread(4, 0.97, 9, 0.01), spread(2, 0.4, 7, 0.3)
    box = {"x": 10, "y": 10, "width": 30, "height": 60}
    digits = [
        {"digit": 4, "confidence": 0.97, "probabilities": four, "box": box},
        {"digit": None, "reason": "not_a_digit", "confidence": 0.4, "probabilities": other, "box": {**box, "x": 60}},
    ]
    answer = {"number": None, "digits": digits, "digit": 4, "confidence": 0.97, "probabilities": four}
    answer["model"] = {"name": "cnn", "version": 2}
    page.route(is_predict, lambda route: route.fulfill(json=answer))
    open_page(page, live_server)
    draw(page, SEVEN)
    expect(page.get_by_test_id("prediction")).to_have_text("4?")
    expect(page.get_by_test_id("status")).to_contain_text("Digit 2 doesn't look like a digit")
    page.get_by_test_id("prediction").locator("button").nth(1).click()
    expect(page.get_by_test_id("confidence")).to_have_text("Digit 2 of 2: not a digit (best guess 2, 40%)")
    assert probabilities(page) == pytest.approx(other, abs=1e-4)


# A triangle, one stroke: nothing a digit looks like (cnn v2 answers a triangle not_a_digit, confidence 0.10)
TRIANGLE = [[(0.5, 0.2), (0.78, 0.78), (0.22, 0.78), (0.5, 0.2)]]


def test_the_shipped_model_says_a_drawing_is_not_a_digit(page, live_server):
    """Issue 14 end to end: real mouse strokes, the real model, its own threshold: the page says it is not a digit."""
    open_page(page, live_server)
    draw(page, TRIANGLE)
    wait_idle(page)
    expect(page.get_by_test_id("status")).to_contain_text("doesn't look like a digit")
    expect(page.get_by_test_id("prediction")).to_have_text("?")
    expect(page.get_by_test_id("pad-readout")).to_have_class(re.compile(r"\bis-refused\b"))
