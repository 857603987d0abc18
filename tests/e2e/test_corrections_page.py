"""Corrections in a real browser: "Wrong? It was: ..." under a prediction, and the admin review page.

The real app and model, a real SQLite database, Chromium through Playwright. What the page sends is checked in the
database through the admin API, over HTTP.
"""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import urllib.request

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.e2e.test_browser import ONE, SEVEN, draw, expect_digit, open_page

TOKEN = "e2e-admin-token"
TWO_DIGITS = [[(x * 0.6 + 0.02, y) for x, y in ONE[0]], [(x * 0.6 + 0.4, y) for x, y in SEVEN[0]]]


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    """The real app with an admin token and its own database, on a werkzeug server in a thread."""
    from werkzeug.serving import make_server

    from service import create_app

    database = tmp_path_factory.mktemp("e2e-db") / "digits.db"
    app = create_app({"model_dir": model_dir, "admin_token": TOKEN, "database_url": f"sqlite:///{database}"})
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_port}"
    http.shutdown()
    thread.join(timeout=10)


def admin_get(base: str, path: str) -> bytes:
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


def corrections(base: str) -> list[dict]:
    return json.loads(admin_get(base, "/v1/corrections?limit=500"))["corrections"]


def test_a_wrong_answer_is_corrected_from_the_page(page: Page, server):
    before = {c["id"] for c in corrections(server)}
    open_page(page, server)
    expect(page.get_by_test_id("correct")).to_be_hidden()  # nothing to correct yet
    draw(page, ONE)
    expect_digit(page, 1)
    expect(page.get_by_test_id("correct")).to_be_visible()
    expect(page.get_by_test_id("correct-note")).to_contain_text("nothing about you")
    page.get_by_test_id("correct-7").click()
    expect(page.get_by_test_id("correct-status")).to_contain_text("Thank you")
    expect(page.get_by_test_id("correct-7")).to_be_disabled()  # sent once per answer
    (new,) = [c for c in corrections(server) if c["id"] not in before]
    assert new["label"] == "7" and new["predicted"] == 1 and new["status"] == "pending"
    seen = np.asarray(Image.open(io.BytesIO(admin_get(server, f"/v1/corrections/{new['id']}/input"))))
    assert seen.shape == (28, 28) and seen.max() > 200  # the drawn stroke, as the model saw it
    # a one-digit answer: the page sends the drawing that was read, and the server reuses that reading
    # (service/recent.py), so what is stored is exactly the input the page showed
    shown = page.get_by_test_id("model-input").get_attribute("src")
    assert seen.tolist() == np.asarray(Image.open(io.BytesIO(base64.b64decode(shown.split(",", 1)[1])))).tolist()
    image = Image.open(io.BytesIO(admin_get(server, f"/v1/corrections/{new['id']}/image")))
    canvas = page.get_by_test_id("canvas").evaluate("c => [c.width, c.height]")
    assert image.width / image.height == pytest.approx(canvas[0] / canvas[1], rel=0.02)  # the whole drawing


def test_one_digit_of_a_number_is_corrected_alone(page: Page, server):
    before = {c["id"] for c in corrections(server)}
    open_page(page, server)
    draw(page, TWO_DIGITS)
    expect(page.get_by_test_id("prediction")).to_have_text(re.compile(r"^\d\d$"))
    page.get_by_test_id("prediction").locator("button").nth(1).click()
    expect(page.locator("#correct-prompt")).to_have_text("Wrong? Digit 2 was:")
    page.get_by_test_id("correct-none").click()
    expect(page.get_by_test_id("correct-status")).to_contain_text("not a digit")
    (new,) = [c for c in corrections(server) if c["id"] not in before]
    image = Image.open(io.BytesIO(admin_get(server, f"/v1/corrections/{new['id']}/image")))
    canvas = page.get_by_test_id("canvas").bounding_box()
    assert new["label"] == "not_a_digit" and image.width < canvas["width"]  # the second digit's part only


def test_a_correction_that_fails_says_so(page: Page, server):
    def unavailable(route):
        body = {"error": {"code": "database_unavailable", "message": "the corrections database is unavailable"}}
        route.fulfill(status=503, content_type="application/json", body=json.dumps(body))

    page.route("**/v1/corrections", unavailable)
    open_page(page, server)
    draw(page, ONE)
    expect_digit(page, 1)
    page.get_by_test_id("correct-4").click()
    status = page.get_by_test_id("correct-status")
    expect(status).to_contain_text("Not saved: the corrections database is unavailable")
    expect(status).to_have_class(re.compile("is-error"))
    expect(page.get_by_test_id("correct-4")).to_be_enabled()  # it can be sent again


def test_the_review_page_accepts_and_rejects(page: Page, server):
    open_page(page, server)
    for label in ("correct-2", "correct-3"):
        page.get_by_test_id("clear").click()
        draw(page, ONE)
        expect_digit(page, 1)
        page.get_by_test_id(label).click()
        expect(page.get_by_test_id("correct-status")).to_contain_text("Thank you")
    page.goto(server + "/admin")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    page.get_by_test_id("token").fill(TOKEN)
    page.get_by_role("button", name="Load").click()
    items = page.get_by_test_id("correction")
    expect(items.first).to_be_visible()
    newest, second = items.nth(0), items.nth(1)
    expect(newest.locator("img.review-image")).to_have_js_property("complete", True)
    assert newest.locator("img.review-image").evaluate("img => img.naturalWidth") > 0  # the thumbnail loaded
    assert newest.locator("img.review-input").evaluate("img => img.naturalWidth") == 28
    newest.get_by_role("button", name="Accept").click()
    second.get_by_role("button", name="Reject").click()
    expect(newest).to_have_attribute("data-status", "accepted")
    expect(second).to_have_attribute("data-status", "rejected")
    by_id = {c["id"]: c for c in corrections(server)}
    assert by_id[int(newest.get_attribute("data-id"))]["status"] == "accepted"
    assert by_id[int(second.get_attribute("data-id"))]["status"] == "rejected"


def test_the_review_page_refuses_a_wrong_token(page: Page, server):
    page.goto(server + "/admin")
    page.get_by_test_id("token").fill("not-the-token")
    page.get_by_role("button", name="Load").click()
    expect(page.get_by_test_id("review-status")).to_contain_text("Could not load corrections")
    expect(page.get_by_test_id("correction")).to_have_count(0)


def test_corrections_in_portuguese(new_page, server):
    """A correction sent from the page in Portuguese, then reviewed on the admin page in Portuguese."""
    page = new_page(locale="pt-BR").page
    open_page(page, server)
    draw(page, ONE)
    expect_digit(page, 1)
    expect(page.locator("#correct-prompt")).to_have_text("Errado? Era:")
    page.get_by_test_id("correct-3").click()
    expect(page.get_by_test_id("correct-status")).to_have_text(
        "Obrigado! Salvo como “3”; passa por revisão antes que o modelo aprenda com ele."
    )

    page.goto(server + "/admin")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("html")).to_have_attribute("lang", "pt-BR")
    expect(page.get_by_role("heading", level=1)).to_have_text("Correções")
    expect(page.get_by_test_id("status-filter").locator("option")).to_have_text(
        ["pendentes", "aceitas", "rejeitadas", "todas"]
    )
    page.get_by_test_id("token").fill("not-the-token")
    page.get_by_role("button", name="Carregar").click()
    status = page.get_by_test_id("review-status")
    expect(status).to_have_text("Não foi possível carregar as correções: o token de administração está errado")

    page.get_by_test_id("token").fill(TOKEN)
    page.get_by_role("button", name="Carregar").click()
    newest = page.get_by_test_id("correction").first
    expect(newest).to_contain_text("Era: 3")
    expect(newest.locator(".review-state")).to_have_text("pendente")
    expect(status).to_have_text(re.compile(r"^Pendentes: \d+; exibidas: \d+\.$"))
    newest.get_by_role("button", name="Aceitar").click()
    expect(newest).to_have_attribute("data-status", "accepted")
    expect(newest.locator(".review-state")).to_have_text("aceita")
    expect(status).to_have_text(f"Correção {newest.get_attribute('data-id')}: aceita.")
