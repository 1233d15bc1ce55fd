"""Content-Security-Policy on every response: pages run only Sheaf's own scripts and styles.

Django 5.2 has no CSP support (6.0 adds `ContentSecurityPolicyMiddleware`, `SECURE_CSP` and a
`csp_nonce` context variable, with the same ideas: a lazy per-request nonce that enters the
header only when a template used it). Our policy is one fixed string, so a small middleware does;
on Django 6.0 this module gives way to the built-in one.

A template that needs an inline `<script>` or `<style>` marks it `nonce="{{ csp_nonce }}"`;
anything else inline (a `style=` attribute, an `onsubmit=` handler, a script injected into a
page) is refused by the browser. A download (`Content-Disposition: attachment`) gets a stricter
policy of its own, and a response that already carries a policy keeps it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase

HEADER = "Content-Security-Policy"

PAGE_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    # Swagger UI draws its icons from data: URLs.
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
    # No form-action: Chromium applies it to the redirect after a POST, and checkout and the
    # billing portal redirect to Stripe's own pages.
}
# What a download may do if a browser ever renders it instead of saving it: nothing.
DOWNLOAD_POLICY = "default-src 'none'; sandbox"

_NONCE_ATTRIBUTE = "csp_nonce"


class Nonce:
    """A request's nonce, made the first time a template prints it (most pages never do)."""

    def __init__(self) -> None:
        self._value: str | None = None

    def __str__(self) -> str:
        if self._value is None:
            self._value = secrets.token_urlsafe(18)
        return self._value

    @property
    def issued(self) -> str | None:
        return self._value


def page_policy(nonce: str | None = None) -> str:
    directives = dict(PAGE_POLICY)
    if nonce:
        for name in ("script-src", "style-src"):
            directives[name] += f" 'nonce-{nonce}'"
    return "; ".join(f"{name} {value}" for name, value in directives.items())


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        nonce = Nonce()
        setattr(request, _NONCE_ATTRIBUTE, nonce)
        response = self.get_response(request)
        if HEADER not in response:
            disposition = response.get("Content-Disposition", "")
            if disposition.startswith("attachment"):
                response[HEADER] = DOWNLOAD_POLICY
            else:
                response[HEADER] = page_policy(nonce.issued)
        return response


def csp_nonce(request: HttpRequest) -> dict[str, object]:
    """Context processor: `{{ csp_nonce }}` for the rare inline `<script>` or `<style>`."""
    return {"csp_nonce": getattr(request, _NONCE_ATTRIBUTE, "")}
