"""The pages' languages: gettext catalogs in service/translations, and the locale each page request is shown in.

The standard library's gettext reads the compiled catalogs (messages.mo) and Jinja2's i18n extension puts `_()` in
the templates; Babel is only the developers' tool that extracts, updates and compiles them (`make translations`).
Flask-Babel would do the same at run time but brings Babel's locale data and pytz into the image, 2 MB that its
size budget does not have (tests/test_image.py).

The locale: `?lang=` (remembered in a cookie), else that cookie, else the best match for the browser's
Accept-Language, else English. English is the messages' own text: it needs no catalog.
"""

from __future__ import annotations

import functools
import gettext as gettext_module
from pathlib import Path

from flask import Flask, Request, Response, g, has_request_context, request

# BCP 47 tags, as in <html lang>, each with its name in itself (the language switch's links)
LANGUAGES = {"en": "English", "pt-BR": "Português"}
LOCALES = tuple(LANGUAGES)
DEFAULT = "en"
COOKIE = "lang"
COOKIE_MAX_AGE = 365 * 24 * 3600
TRANSLATIONS = Path(__file__).resolve().parent / "translations"
MAX_TAG = 35  # longer than any real language tag: anything longer is ignored, not parsed


def match(tag: str | None) -> str | None:
    """The supported locale for a language tag: the same tag (any case, - or _), else the same primary language."""
    if not tag or len(tag) > MAX_TAG:
        return None
    wanted = tag.strip().replace("_", "-").lower()
    for locale in LOCALES:
        if wanted == locale.lower():
            return locale
    primary = wanted.split("-")[0]
    return next((locale for locale in LOCALES if locale.lower().split("-")[0] == primary), None)


def chosen(req: Request) -> str | None:
    """The locale the user picked: `?lang=`, else the cookie a previous `?lang=` set; None if neither is supported."""
    return match(req.args.get("lang")) or match(req.cookies.get(COOKIE))


def negotiate(req: Request) -> str:
    """The locale of a request: the user's pick, else Accept-Language's first supported tag by quality, else English."""
    picked = chosen(req)
    if picked:
        return picked
    # werkzeug orders the accepted tags by quality (q=0, "not acceptable", is dropped when parsed)
    for tag, quality in req.accept_languages:
        found = match(tag) if quality > 0 and tag != "*" else None
        if found:
            return found
    return DEFAULT


def get_locale() -> str:
    """The current request's locale (English outside a request)."""
    if not has_request_context():
        return DEFAULT
    if "locale" not in g:
        g.locale = negotiate(request)
    return g.locale


@functools.cache
def translations(locale: str) -> gettext_module.NullTranslations:
    """The catalog of a supported locale; English is the messages themselves. A missing catalog fails loudly."""
    if locale == DEFAULT:
        return gettext_module.NullTranslations()
    return gettext_module.translation("messages", TRANSLATIONS, languages=[locale.replace("-", "_")])


def gettext(message: str) -> str:
    """`message` in the current request's language."""
    return translations(get_locale()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(get_locale()).ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    """`message` in the current request's language, where the same English needs another word in `context`."""
    return translations(get_locale()).pgettext(context, message)


def localise(response: Response) -> Response:
    """A page's response: its language, the caches told what it varies on, and a `?lang=` pick remembered."""
    response.headers["Content-Language"] = get_locale()
    response.vary.update(("Accept-Language", "Cookie"))
    picked = match(request.args.get("lang"))
    if picked:
        # a preference only: no identifier, not readable by scripts, not sent on cross-site subrequests
        response.set_cookie(
            COOKIE, picked, max_age=COOKIE_MAX_AGE, samesite="Lax", httponly=True, secure=request.is_secure
        )
    return response


def install(app: Flask) -> None:
    """`_()`, `ngettext()` and `pgettext()` in the app's templates, in each request's language; `locale` in their
    context."""
    for locale in LOCALES:
        translations(locale)  # every catalog read now: a missing one stops the start, not a page view
    app.jinja_env.add_extension("jinja2.ext.i18n")
    app.jinja_env.install_gettext_callables(gettext, ngettext, newstyle=True, pgettext=pgettext)
    app.context_processor(lambda: {"locale": get_locale(), "languages": LANGUAGES})
