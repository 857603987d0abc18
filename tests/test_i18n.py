"""The pages in English and Brazilian Portuguese: which language a request gets (?lang=, the cookie, Accept-Language),
what the page says in it, and the catalogs themselves (every string translated, the committed .mo compiled from
the committed .po). In a browser: tests/e2e/test_languages.py."""

from __future__ import annotations

import gettext
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from service import i18n

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "service" / "translations" / "pt_BR" / "LC_MESSAGES"
PLACEHOLDER = re.compile(r"\{\w+\}|%\(\w+\)s")


class PageParser(HTMLParser):
    """What the tests read from a page: <html lang>, <title>, the language links, the scripts' messages."""

    def __init__(self, html: str):
        super().__init__()
        self.lang, self.title, self.links, self.messages = None, "", {}, None
        self._in = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "html":
            self.lang = attrs.get("lang")
        elif tag == "a" and (attrs.get("data-testid") or "").startswith("lang-"):
            self.links[attrs["lang"]] = attrs
        elif tag == "body":
            self.messages = json.loads(attrs["data-messages"])
        self._in = tag

    def handle_data(self, data):
        if self._in == "title":
            self.title += data

    def handle_endtag(self, tag):
        self._in = None


def page(client, path: str = "/", accept: str | None = None, cookie: str | None = None):
    if cookie is not None:
        client.set_cookie(i18n.COOKIE, cookie)
    headers = {"Accept-Language": accept} if accept is not None else {}
    response = client.get(path, headers=headers)
    assert response.status_code == 200
    return response, PageParser(response.get_data(as_text=True))


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("pt-BR", "pt-BR"),
        ("pt-br", "pt-BR"),
        ("pt", "pt-BR"),
        ("pt-PT", "pt-BR"),  # the only Portuguese we have, rather than English
        ("pt-PT,pt;q=0.9,en;q=0.8", "pt-BR"),
        ("en-US,en;q=0.9,pt-BR;q=0.8", "en"),
        ("en;q=0.5, pt-PT", "pt-BR"),  # by quality, not by the order written
        ("fr-FR,fr;q=0.9,pt;q=0.5,en;q=0.4", "pt-BR"),  # the first language we support
        ("de-DE, en-GB;q=0.9, pt;q=0.8", "en"),
        ("pt;q=0, en;q=0.1", "en"),  # q=0: not acceptable
        ("fr, de", "en"),
        ("*", "en"),
        ("", "en"),
        (None, "en"),
        ("x" * 200, "en"),
    ],
)
def test_accept_language_picks_the_page_language(client, accept, expected):
    response, html = page(client, accept=accept)
    assert html.lang == expected
    assert response.headers["Content-Language"] == expected
    assert "Set-Cookie" not in response.headers  # only a choice on the page is remembered


@pytest.mark.parametrize(
    ("query", "accept", "expected", "remembered"),
    [
        ("pt-BR", "en", "pt-BR", "pt-BR"),
        ("pt_BR", "en", "pt-BR", "pt-BR"),
        ("pt", "en", "pt-BR", "pt-BR"),
        ("en", "pt-BR", "en", "en"),
        ("EN", "pt-BR", "en", "en"),
        ("fr", "pt-BR", "pt-BR", None),  # unknown: ignored, as if absent
        ("", "pt-BR", "pt-BR", None),
        ("x" * 100, "pt-BR", "pt-BR", None),
    ],
)
def test_lang_parameter_chooses_and_is_remembered(client, query, accept, expected, remembered):
    response, html = page(client, f"/?lang={query}", accept=accept)
    assert html.lang == expected
    cookie = response.headers.get("Set-Cookie")
    if remembered is None:
        assert cookie is None
        return
    assert cookie.startswith(f"{i18n.COOKIE}={remembered};")
    assert "SameSite=Lax" in cookie and "HttpOnly" in cookie and "Path=/" in cookie
    assert "Max-Age=31536000" in cookie
    # the next visit, without ?lang, keeps the choice over the browser's language
    _, again = page(client, accept="pt-BR" if remembered == "en" else "en")
    assert again.lang == remembered


@pytest.mark.parametrize(
    ("cookie", "accept", "expected"),
    [
        ("pt-BR", "en-US", "pt-BR"),
        ("en", "pt-BR", "en"),
        ("klingon", "pt-BR", "pt-BR"),  # an unknown cookie is ignored
        ("", "pt-BR", "pt-BR"),
    ],
)
def test_the_cookie_wins_over_accept_language(client, cookie, accept, expected):
    _, html = page(client, accept=accept, cookie=cookie)
    assert html.lang == expected


def test_lang_parameter_wins_over_the_cookie(client):
    _, html = page(client, "/?lang=en", accept="pt-BR", cookie="pt-BR")
    assert html.lang == "en"


def test_the_page_varies_on_language_and_cookie(client):
    response, _ = page(client, accept="pt-BR")
    vary = {v.strip().lower() for v in response.headers["Vary"].split(",")}
    assert {"accept-language", "cookie"} <= vary
    assert response.headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize(
    ("accept", "title", "current"), [("en", "handwritten", "en"), ("pt-BR", "manuscritos", "pt-BR")]
)
def test_the_page_is_in_its_language_with_a_switch(client, accept, title, current):
    _, html = page(client, accept=accept)
    assert title in html.title
    assert set(html.links) == set(i18n.LOCALES)
    for locale, link in html.links.items():
        assert link["href"] == f"/?lang={locale}"
        assert (link.get("aria-current") == "true") == (locale == current), link


def test_the_scripts_messages_are_in_the_page_language(client):
    _, english = page(client, accept="en")
    _, portuguese = page(client, accept="pt-BR")
    assert english.messages["wrong"] == "Wrong? It was:"
    assert portuguese.messages["wrong"] == "Errado? Era:"
    assert portuguese.messages["confident"] == "{percent} de confiança"
    # the same keys, every one translated, each with the same parameters as its English
    common = set(english.messages) & set(portuguese.messages)
    assert set(english.messages) == common
    for key in common:
        assert portuguese.messages[key] and portuguese.messages[key] != key
        assert sorted(PLACEHOLDER.findall(english.messages[key])) == sorted(
            PLACEHOLDER.findall(portuguese.messages[key])
        ), key


def test_api_error_codes_have_page_messages_except_in_english(client):
    """An English page shows the API's English message as it is; a Portuguese page a translation of its code."""
    _, english = page(client, accept="en")
    _, portuguese = page(client, accept="pt-BR")
    assert not any(key.startswith("error.") for key in english.messages)
    assert portuguese.messages["error.database_unavailable"].startswith("o banco de dados de correções")
    # the API itself stays English whatever the language asked for
    response = client.post("/predict", data=b"", headers={"Accept-Language": "pt-BR", "Content-Type": "image/png"})
    assert response.status_code == 400 and response.json["error"]["code"] == "empty_body"
    assert "empty request body" in response.json["error"]["message"]


def test_matching_a_language_tag():
    assert i18n.match("pt-br") == "pt-BR" and i18n.match("PT") == "pt-BR" and i18n.match("en_GB") == "en"
    assert i18n.match("") is None and i18n.match(None) is None and i18n.match("fr") is None
    assert i18n.match("p") is None and i18n.match("-") is None


# ---- the catalogs ----------------------------------------------------------------------------------------------


def extracted() -> set[tuple[str, str | None]]:
    """Every (message id, context) in the sources today, as `make translations` extracts them (babel.cfg)."""
    with open(ROOT / "babel.cfg") as f:
        method_map, options_map = parse_mapping_cfg(f)
    found = extract_from_dir(ROOT, method_map, options_map)
    return {(message if isinstance(message, str) else message[0], context) for _, _, message, _, context in found}


def test_every_string_in_the_sources_has_a_portuguese_translation():
    with open(CATALOG / "messages.po", "rb") as f:
        catalog = read_po(f)
    translated = {(m.id, m.context): m.string for m in catalog if m.id and m.string and not m.fuzzy}
    ids = extracted()
    assert len(ids) > 50  # the extraction found the templates' and the scripts' messages
    missing = sorted(ids - set(translated), key=str)
    assert not missing, f"untranslated (run `make translations`, then translate them in messages.po): {missing}"
    for msgid, context in ids:
        placeholders = sorted(PLACEHOLDER.findall(translated[msgid, context]))
        assert sorted(PLACEHOLDER.findall(msgid)) == placeholders, msgid


def test_the_committed_mo_is_the_compiled_po():
    with open(CATALOG / "messages.po", "rb") as f:
        catalog = read_po(f)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    fresh = gettext.GNUTranslations(compiled)
    with open(CATALOG / "messages.mo", "rb") as f:
        committed = gettext.GNUTranslations(f)
    assert committed._catalog == fresh._catalog, "messages.mo is stale: run `make translations`"
    assert committed.info()["language"] == "pt_BR"
