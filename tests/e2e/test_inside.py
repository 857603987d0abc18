"""The "Look inside" and "Compare models" panels in a real browser: real pointer input, the real app, the real
models (the bundled softmax, mlp and cnn behind `?model=`), the real activations, saliency and templates.

Run: .venv/bin/python -m pytest tests/e2e/test_inside.py -q   (E2E_SCREENSHOT_DIR=/tmp saves inside-*.png)
"""

from __future__ import annotations

import json
import math
import re

import pytest
from playwright.sync_api import Page, Route, expect

from tests.e2e.test_browser import (
    ONE,
    PHONE,
    SEVEN,
    canvas_point,
    draw,
    expect_digit,
    is_predict,
    open_page,
    screenshot,
    touch_stroke,
    wait_idle,
)
from tests.e2e.test_numbers import write

PITCH = 7  # inside.js: a dense unit's cell is 6 px and a 1 px gap
TITLES = {"softmax": "Softmax regression", "mlp": "Perceptron", "cnn": "Convolutional network"}
DENSE = re.compile(r"^(\w+): (\d+) units, (\d+) active, strongest ([\d.,]+)$")


class Answers:
    """Every /predict request the page sends, passed on to the server: its URL, body and the JSON answer."""

    def __init__(self, page: Page):
        self.seen: list[tuple[str, str, dict | None]] = []
        page.route(is_predict, self._route)

    def _route(self, route: Route) -> None:
        response = route.fetch()
        self.seen.append((route.request.url, route.request.post_data, response.json()))
        route.fulfill(response=response)

    def last(self, include: str = "activations") -> dict:
        """The newest answer whose request asked for `include`."""
        found = [data for url, _, data in self.seen if include in url]
        assert found, [url for url, _, _ in self.seen]
        return found[-1]


@pytest.fixture(scope="module")
def models(live_server) -> dict:
    """GET /v1/models, the three models of the course required."""
    import urllib.request

    with urllib.request.urlopen(live_server + "/v1/models") as response:
        data = json.load(response)
    names = {m["name"] for m in data["models"]}
    assert {"softmax", "mlp", "cnn"} <= names, names
    return data


def choose_model(page: Page, models: dict, name: str) -> None:
    if models["default"] != name:
        page.get_by_test_id("model").select_option(name)


def drawn(page: Page, answers: Answers, strokes, digit: int) -> dict:
    """Draw `strokes` with the mouse; once the page shows `digit`, the selected digit of the answer it shows."""
    draw(page, strokes)
    expect_digit(page, digit)
    expect(page.get_by_test_id("network")).to_be_visible()
    return answers.last()["digits"][0]


def layers(page: Page) -> list[dict]:
    return page.get_by_test_id("layer").evaluate_all(
        "ls => ls.map(l => ({name: l.dataset.name, kind: l.dataset.kind}))"
    )


def pixel(locator, x: int, y: int) -> list[int]:
    """The RGBA of a canvas's pixel (x, y), in its own pixels."""
    return locator.evaluate(f"c => Array.from(c.getContext('2d').getImageData({x}, {y}, 1, 1).data)")


def expect_dense(page: Page, layer: dict) -> None:
    """A dense layer's canvas: one cell per unit, lit by value, with its text summary."""
    column = page.locator(f"[data-testid=layer][data-name={layer['name']}]")
    canvas = column.get_by_test_id("units")
    expect(canvas).to_have_attribute("data-units", str(layer["units"]))
    values = layer["values"]
    assert len(values) == layer["units"]
    match = DENSE.match(canvas.get_attribute("aria-label"))
    assert match, canvas.get_attribute("aria-label")
    assert match[1] == layer["name"] and int(match[2]) == layer["units"]
    assert int(match[3]) == sum(v > 0 for v in values)
    assert float(match[4].replace(",", "")) == pytest.approx(max(abs(v) for v in values), abs=0.006)
    expect(column).to_contain_text(match[0])  # the summary as text too
    cols = math.ceil(math.sqrt(len(values) / 2))
    size = canvas.evaluate("c => [c.width, c.height]")
    assert size == [cols * PITCH - 1, math.ceil(len(values) / cols) * PITCH - 1], size
    # the strongest unit is lit brightest; a unit at 0 stays dark
    cell = lambda i: pixel(canvas, (i % cols) * PITCH + 2, (i // cols) * PITCH + 2)  # noqa: E731
    strongest = cell(max(range(len(values)), key=values.__getitem__))
    assert strongest[0] > 200 and strongest[1] > 200, strongest
    if 0 in values:
        assert sum(cell(values.index(0))[:3]) < 120


def expect_output(page: Page, digit: dict) -> None:
    units = page.get_by_test_id("output-unit")
    expect(units).to_have_count(10)
    expect(page.locator("[data-testid=output-unit].is-answer")).to_have_count(1)
    expect(units.nth(digit["digit"])).to_have_class(re.compile(r"\bis-answer\b"))
    expect(units.nth(digit["digit"])).to_contain_text(str(digit["digit"]))


def expect_saliency(page: Page, digit: dict) -> None:
    """The saliency over the model's input: red where it is strongest, and said in words."""
    expect(page.get_by_test_id("network-input")).to_have_attribute("src", digit["input"])
    canvas = page.get_by_test_id("saliency")
    expect(canvas).to_have_attribute("aria-label", re.compile("occlusion"))
    values = digit["saliency"]["values"]
    assert len(values) == 28 and all(len(row) == 28 for row in values)
    y, x = max(((y, x) for y in range(28) for x in range(28)), key=lambda p: values[p[0]][p[1]])
    page.wait_for_function(
        "c => c.getContext('2d').getImageData(0, 0, 28, 28).data.some((v, i) => i % 4 < 3 && v > 0)",
        arg=canvas.element_handle(),
    )  # drawn once the input image has decoded
    r, g, b, _ = pixel(canvas, x, y)
    assert r > g and r > b, (r, g, b)


def test_look_inside_the_cnn_shows_its_feature_maps_and_saliency(probe, live_server, models):
    page = probe.page
    answers = Answers(page)
    open_page(page, live_server)
    expect(page.get_by_test_id("network")).to_be_hidden()  # nothing to look inside before a prediction
    choose_model(page, models, "cnn")
    digit = drawn(page, answers, ONE, 1)
    network = page.get_by_test_id("network")
    expect(network.get_by_role("heading", name="Look inside the network")).to_be_visible()
    expect(page.get_by_test_id("network-toggle")).to_have_attribute("aria-expanded", "true")
    activations = digit["activations"]
    expect(page.get_by_test_id("layer")).to_have_count(1 + len(activations))
    assert layers(page) == [{"name": "input", "kind": "input"}] + [
        {"name": a["name"], "kind": "output" if a["name"] == "output" else a["kind"]} for a in activations
    ]
    convs = [a for a in activations if a["kind"] == "conv"]
    assert convs, activations
    maps = page.get_by_test_id("feature-maps")
    expect(maps).to_have_count(len(convs))
    for i, layer in enumerate(convs):
        img = maps.nth(i)
        expect(img).to_have_attribute("src", layer["atlas"])
        img.evaluate("i => i.decode()")
        (rows, cols), (h, w, n) = layer["grid"], layer["shape"]
        assert rows * cols >= n
        natural = img.evaluate("i => [i.complete, i.naturalWidth, i.naturalHeight, getComputedStyle(i).imageRendering]")
        assert natural == [True, cols * w, rows * h, "pixelated"], natural
        expect(img).to_have_attribute("alt", re.compile(rf"^{layer['name']}: {n} feature maps of {h}×{w}"))
    for layer in activations:
        if layer["kind"] == "dense" and layer["name"] != "output":
            expect_dense(page, layer)
    expect_output(page, digit)
    expect_saliency(page, digit)
    screenshot(page, "inside-cnn.png")
    page.get_by_test_id("clear").click()
    expect(page.get_by_test_id("network")).to_be_hidden()
    expect(page.get_by_test_id("layer")).to_have_count(0)
    assert probe.errors == []
    assert probe.csp_violations() == []


def test_look_inside_the_mlp_shows_two_columns_of_512_neurons(probe, live_server, models):
    page = probe.page
    answers = Answers(page)
    open_page(page, live_server)
    choose_model(page, models, "mlp")
    digit = drawn(page, answers, SEVEN, 7)
    assert answers.last()["model"]["name"] == "mlp"
    expect(page.get_by_test_id("network-sub")).to_contain_text("mlp")
    hidden = [a for a in digit["activations"] if a["name"] != "output"]
    assert [(a["name"], a["units"]) for a in hidden] == [("hidden1", 512), ("hidden2", 512)]
    expect(page.get_by_test_id("units")).to_have_count(2)
    for layer in hidden:
        expect_dense(page, layer)
    expect(page.get_by_test_id("feature-maps")).to_have_count(0)
    expect_output(page, digit)
    expect_saliency(page, digit)
    assert probe.errors == []


def test_look_inside_softmax_regression_shows_its_templates_between_input_and_output(probe, live_server, models):
    page = probe.page
    answers = Answers(page)
    open_page(page, live_server)
    choose_model(page, models, "softmax")
    digit = drawn(page, answers, ONE, 1)
    assert [a["name"] for a in digit["activations"]] == ["output"]
    expect(page.get_by_test_id("layer")).to_have_count(3)
    assert [layer["name"] for layer in layers(page)] == ["input", "weights", "output"]
    expect(page.locator("[data-name=weights] [data-testid=template]")).to_have_count(10)
    expect_output(page, digit)
    assert probe.errors == []


def test_the_network_panel_follows_the_chosen_digit_of_a_number(probe, live_server):
    page = probe.page
    answers = Answers(page)
    open_page(page, live_server)
    write(page, "47")
    expect(page.get_by_test_id("prediction")).to_have_text("47")
    wait_idle(page)
    sub = page.get_by_test_id("network-sub")
    expect(sub).to_contain_text("digit 1 of 2")
    last = answers.last()["digits"]
    expect(page.get_by_test_id("network-input")).to_have_attribute("src", last[0]["input"])
    page.get_by_role("radio").last.click()
    expect(sub).to_contain_text("digit 2 of 2")
    expect(page.get_by_test_id("network-input")).to_have_attribute("src", last[1]["input"])
    expect(page.locator("[data-testid=output-unit].is-answer")).to_contain_text("7")
    assert probe.errors == []


def test_compare_models_reads_the_drawing_with_all_three(probe, live_server, models):
    page = probe.page
    answers = Answers(page)
    open_page(page, live_server)
    toggle = page.get_by_test_id("compare-toggle")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_test_id("compare-status")).to_contain_text("Draw a digit")
    draw(page, ONE)
    expect_digit(page, 1)
    cards = page.get_by_test_id("compare-model")
    expect(cards).to_have_count(3)
    assert cards.evaluate_all("cs => cs.map(c => c.dataset.model)") == ["softmax", "mlp", "cnn"]  # the course's order
    by_name = {m["name"]: m for m in models["models"]}
    for i, name in enumerate(["softmax", "mlp", "cnn"]):
        card = cards.nth(i)
        expect(card.get_by_role("heading", level=3)).to_have_text(TITLES[name])
        # the classifier's own weights, which the card describes: not those of a "not a digit" detector beside it
        expect(card).to_contain_text(f"{by_name[name]['classifier_parameters']:,} weights")
        expect(card.get_by_test_id("compare-answer")).to_have_text(re.compile(r"^\d+$"))
        expect(card.locator(".mini-prob")).to_have_count(10)
    wait_idle(page)
    page.wait_for_load_state("networkidle")
    # each model got the drawing the page itself sent last, and its card shows that model's answer
    shown = [body for url, body, _ in answers.seen if "include" in url][-1]
    for name in ("softmax", "mlp", "cnn"):
        _, body, answer = [seen for seen in answers.seen if f"model={name}" in seen[0] and "include" not in seen[0]][-1]
        assert body == shown
        expect(page.locator(f"[data-model={name}] [data-testid=compare-answer]")).to_have_text(answer["number"])
    for name in ("mlp", "cnn"):
        expect(page.locator(f"[data-model={name}] [data-testid=compare-answer]")).to_have_text("1")
    # the model answering above is marked, for the eye and for a screen reader
    for name in ("softmax", "mlp", "cnn"):
        card = expect(page.locator(f"[data-testid=compare-model][data-model={name}]"))
        if name == models["default"]:
            card.to_have_attribute("aria-current", "true")
        else:
            card.not_to_have_attribute("aria-current", re.compile("."))
    expect_templates(page, live_server)
    screenshot(page, "inside-compare.png")
    page.get_by_test_id("clear").click()  # nothing drawn: nothing compared
    expect(page.get_by_test_id("compare-status")).to_contain_text("Draw a digit")
    expect(page.get_by_test_id("compare-answer")).to_have_text(["", "", ""])
    assert probe.errors == []
    assert probe.csp_violations() == []


def expect_templates(page: Page, live_server: str) -> None:
    """Softmax regression's ten templates: 28x28 canvases labelled 0-9, red on its largest weight, blue on its least."""
    templates = page.request.get(live_server + "/v1/models/softmax/templates").json()["templates"]
    section = page.get_by_test_id("templates")
    expect(section).to_be_visible()
    canvases = section.get_by_test_id("template")
    expect(canvases).to_have_count(10)
    expect(section.locator(".template-digit")).to_have_text([str(d) for d in range(10)])
    for d, template in enumerate(templates):
        canvas = canvases.nth(d)
        expect(canvas).to_have_attribute("aria-label", re.compile(rf"\b{d}\b"))
        assert canvas.evaluate("c => [c.width, c.height]") == [28, 28]
        weights = template["weights"]
        cells = [(y, x) for y in range(28) for x in range(28)]
        y, x = max(cells, key=lambda p: weights[p[0]][p[1]])
        r, _, b, _ = pixel(canvas, x, y)
        assert r > b + 50, (d, r, b)
        y, x = min(cells, key=lambda p: weights[p[0]][p[1]])
        r, _, b, _ = pixel(canvas, x, y)
        assert b > r + 50, (d, r, b)


def test_a_collapsed_network_panel_asks_for_no_layers_and_fetches_them_when_opened(probe, live_server):
    page = probe.page
    answers = Answers(page)
    open_page(page, live_server)
    draw(page, ONE)
    expect_digit(page, 1)
    toggle = page.get_by_test_id("network-toggle")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(page.get_by_test_id("network-layers")).to_be_hidden()
    page.reload()  # the choice is remembered
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    answers.seen.clear()
    with page.expect_request(lambda r: is_predict(r.url)) as first:
        draw(page, ONE)
    expect_digit(page, 1)
    assert "activations" not in first.value.url and "saliency" not in first.value.url
    assert all("activations" not in url for url, _, _ in answers.seen)
    expect(page.get_by_test_id("network-toggle")).to_have_attribute("aria-expanded", "false")
    with page.expect_response(lambda r: is_predict(r.url) and "activations" in r.url) as fetched:
        page.get_by_test_id("network-toggle").click()
    assert "model=" in fetched.value.url
    expect(page.get_by_test_id("layer")).to_have_count(1 + len(answers.last()["digits"][0]["activations"]))
    assert probe.errors == []


def test_phone_layout_is_one_column_without_horizontal_scroll(new_page, live_server):
    probe = new_page(**PHONE)
    page = probe.page
    open_page(page, live_server)
    page.get_by_test_id("compare-toggle").click()
    page.get_by_test_id("canvas").scroll_into_view_if_needed()
    cdp = page.context.new_cdp_session(page)
    for stroke in SEVEN:
        touch_stroke(cdp, [canvas_point(page, x, y) for x, y in stroke])
    expect_digit(page, 7)
    expect(page.get_by_test_id("layer").first).to_be_visible()
    cards = page.get_by_test_id("compare-model")
    expect(cards).to_have_count(3)
    expect(page.get_by_test_id("template")).to_have_count(10)
    for card in cards.all():
        expect(card.get_by_test_id("compare-answer")).to_have_text(re.compile(r"^\d+$"))
    width = page.viewport_size["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    boxes = [card.bounding_box() for card in cards.all()]
    for above, below in zip(boxes, boxes[1:], strict=False):
        assert below["y"] >= above["y"] + above["height"], boxes  # stacked: one column
    selectors = "[data-testid=layer], [data-testid=compare-model], [data-testid=template], .net-stage"
    rights = page.locator(selectors).evaluate_all("es => es.map(e => e.getBoundingClientRect().right)")
    assert rights and max(rights) <= width, rights
    screenshot(page, "inside-phone.png")
    assert probe.errors == []


def focused(page: Page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.dataset.testid || ''")


def tab_to(page: Page, testid: str, limit: int = 80) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if focused(page) == testid:
            return
    pytest.fail(f"Tab never reached {testid}")


def test_the_panels_are_reached_and_opened_with_the_keyboard(probe, live_server):
    page = probe.page
    open_page(page, live_server)
    draw(page, ONE)
    expect_digit(page, 1)
    network = page.get_by_role("button", name="Look inside the network")
    compare = page.get_by_role("button", name="Compare models")
    expect(page.get_by_role("heading", level=2, name="Look inside the network")).to_have_count(1)
    expect(page.get_by_role("heading", level=2, name="Compare models")).to_have_count(1)
    page.locator("body").focus()
    tab_to(page, "network-toggle")
    page.keyboard.press("Enter")
    expect(network).to_have_attribute("aria-expanded", "false")
    expect(page.get_by_test_id("network-layers")).to_be_hidden()
    page.keyboard.press("Enter")
    expect(network).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_test_id("layer").first).to_be_visible()
    page.keyboard.press("Tab")  # the layers hold nothing to tab through: the next stop is the other panel
    assert focused(page) == "compare-toggle"
    page.keyboard.press("Enter")
    expect(compare).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_test_id("compare-answer")).to_have_count(3)
    for answer in page.get_by_test_id("compare-answer").all():
        expect(answer).to_have_text(re.compile(r"^\d+$"))
    page.keyboard.press("Space")  # a real button: Space works too
    expect(compare).to_have_attribute("aria-expanded", "false")
    assert probe.errors == []


def test_the_panels_speak_portuguese(probe, live_server, models):
    page = probe.page
    answers = Answers(page)
    page.goto(live_server + "/?lang=pt-BR")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    page.get_by_role("button", name="Comparar modelos").click()
    choose_model(page, models, "mlp")
    digit = drawn(page, answers, ONE, 1)
    expect(page.get_by_role("heading", level=2, name="Olhe dentro da rede")).to_be_visible()
    hidden1 = digit["activations"][0]
    active = sum(v > 0 for v in hidden1["values"])
    units = page.locator("[data-name=hidden1] [data-testid=units]")
    # the summary in Portuguese, its number written with a decimal comma
    expect(units).to_have_attribute(
        "aria-label", re.compile(rf"^hidden1: 512 neurônios, {active} ativos, máximo \d+(,\d+)?$")
    )
    expect(page.get_by_test_id("saliency")).to_have_attribute("aria-label", re.compile("^Saliência por oclusão"))
    cards = page.get_by_test_id("compare-model")
    expect(cards.get_by_role("heading", level=3)).to_have_text(
        ["Regressão softmax", "Perceptron multicamadas", "Rede convolucional"]
    )
    expect(cards.first).to_contain_text("7.850 pesos")
    expect(page.get_by_test_id("templates")).to_contain_text("O que a regressão softmax aprendeu")
    expect(page.get_by_test_id("template").first).to_have_attribute("aria-label", "Pesos do dígito 0")
    assert probe.errors == []
