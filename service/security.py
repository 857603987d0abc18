"""Security headers on every response, as WSGI middleware around the Flask app."""

from __future__ import annotations

from collections.abc import Callable, Iterable

# The page loads only its own script and stylesheet: no inline code, no third-party origin.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}


class SecurityHeaders:
    """WSGI middleware: SECURITY_HEADERS on every response, unless the response set its own.

    Added as raw (name, value) pairs in start_response: cheaper than going through werkzeug's Headers
    object in an after_request hook on every request (`python -m bench.profile_request` shows the cost).
    """

    def __init__(self, wsgi_app: Callable, headers: dict[str, str] = SECURITY_HEADERS):
        self.wsgi_app = wsgi_app
        self.headers = [(name.lower(), (name, value)) for name, value in headers.items()]

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        def start(status, headers, exc_info=None):
            present = {name.lower() for name, _ in headers}
            headers.extend(pair for lower, pair in self.headers if lower not in present)
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)
