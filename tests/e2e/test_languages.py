"""The page in Portuguese and English in a real browser: chosen from the browser's language, switched on the page
(by keyboard), remembered across visits; the script's messages and the API's errors in the page's language.
The negotiation itself, case by case, is tested without a browser in tests/test_i18n.py.
"""

from __future__ import annotations

import json
import re

from playwright.sync_api import Page, Route, expect

from tests.e2e.test_browser import ONE, PHONE, draw, expect_digit, open_page, wait_idle

PT_TITLE = "Desenhe um dígito ou um número"
EN_TITLE = "Draw a digit or a number"


def expect_language(page: Page, locale: str, heading: str) -> None:
    expect(page.locator("html")).to_have_attribute("lang", locale)
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    expect(page.get_by_test_id(f"lang-{locale}")).to_have_attribute("aria-current", "true")
    other = "en" if locale == "pt-BR" else "pt-BR"
    expect(page.get_by_test_id(f"lang-{other}")).not_to_have_attribute("aria-current", re.compile("."))


def switch_by_keyboard(page: Page, locale: str) -> None:
    """From the header's first link, Tab to the language's link, as a keyboard user would, and follow it."""
    link = page.get_by_test_id(f"lang-{locale}")
    page.locator(".brand").focus()
    for _ in range(4):
        page.keyboard.press("Tab")
        if link.evaluate("el => el === document.activeElement"):
            break
    expect(link).to_be_focused()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def test_portuguese_from_the_browser_then_switched_and_remembered(new_page, live_server):
    probe = new_page(locale="pt-BR")  # Chromium then sends Accept-Language: pt-BR
    page = probe.page
    open_page(page, live_server)
    expect_language(page, "pt-BR", PT_TITLE)
    expect(page).to_have_title(re.compile("reconhecimento de dígitos manuscritos"))
    expect(page.get_by_test_id("status")).to_have_text("Desenhe um dígito ou um número, ou envie uma imagem.")
    expect(page.get_by_test_id("probs-title")).to_have_text("Probabilidades")
    expect(page.get_by_text("Enviar uma imagem")).to_be_visible()

    draw(page, ONE)
    expect_digit(page, 1)
    # the script's own text, and the number written as Portuguese writes it (a decimal comma, if any)
    expect(page.get_by_test_id("confidence")).to_have_text(re.compile(r"^\d{1,3}(,\d)?\s?% de confiança$"))
    expect(page.locator("#correct-prompt")).to_have_text("Errado? Era:")
    expect(page.get_by_test_id("correct-none")).to_have_text("não é um dígito")

    switch_by_keyboard(page, "en")
    expect_language(page, "en", EN_TITLE)
    expect(page.get_by_test_id("status")).to_have_text("Draw a digit or a number, or upload a picture of one.")
    draw(page, ONE)
    expect_digit(page, 1)
    expect(page.get_by_test_id("confidence")).to_have_text(re.compile(r"^\d{1,3}(\.\d)?% confident$"))
    # remembered: a reload, and a visit without ?lang, stay English though the browser asks for Portuguese
    page.reload()
    expect_language(page, "en", EN_TITLE)
    open_page(page, live_server)
    expect_language(page, "en", EN_TITLE)

    page.get_by_test_id("lang-pt-BR").click()
    expect_language(page, "pt-BR", PT_TITLE)
    open_page(page, live_server)
    page.reload()
    expect_language(page, "pt-BR", PT_TITLE)
    assert probe.errors == [] and probe.csp_violations() == []


def test_api_errors_are_shown_in_the_page_language(new_page, live_server):
    """The API answers with an English code and message; a Portuguese page shows its own words for the code."""
    page = new_page(extra_http_headers={"Accept-Language": "pt-PT,pt;q=0.9,en;q=0.5"}).page
    error = {"error": {"code": "too_many_digits", "message": "found 23 digits; the limit is 20"}}
    page.route(
        re.compile(r".*/predict(\?.*)?$"),
        lambda route: route.fulfill(status=422, content_type="application/json", body=json.dumps(error)),
    )
    open_page(page, live_server)
    expect_language(page, "pt-BR", PT_TITLE)
    draw(page, ONE)
    wait_idle(page)
    status = page.get_by_test_id("status")
    expect(status).to_have_text("Dígitos demais: escreva menos dígitos de cada vez")
    expect(status).to_have_class(re.compile("is-error"))

    def offline(route: Route) -> None:
        route.abort()

    page.unroute(re.compile(r".*/predict(\?.*)?$"))
    page.route(re.compile(r".*/predict(\?.*)?$"), offline)
    page.get_by_test_id("clear").click()
    draw(page, ONE)
    expect(status).to_have_text(re.compile("^Não foi possível conectar ao servidor"))


def test_the_switch_fits_a_phone(new_page, live_server):
    page = new_page(**PHONE, locale="pt-BR").page
    open_page(page, live_server)
    links = page.get_by_test_id("languages").get_by_role("link")
    expect(links).to_have_text(["English", "Português"])
    width = page.evaluate("document.documentElement.clientWidth")
    for i in range(2):
        box = links.nth(i).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, box
        assert box["height"] >= 24  # a target a finger can hit
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing pushed off the side
