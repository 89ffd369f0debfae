"""The web access token: checked in constant time, kept in an HttpOnly cookie, never logged.

A browser presents the token once -- on the login form, or as ``?token=`` in the first URL
(the gateway then sets the cookie and redirects to the same address without it) -- and
afterwards sends the cookie. The cookie holds an HMAC of a fixed label keyed with the token,
not the token itself. Scripts may send ``Authorization: Bearer <token>``.
Without a configured token (loopback only, see :mod:`slicerfm_web.settings`) nothing is checked.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Optional

from aiohttp import web

COOKIE = "slicerfm_web"
PUBLIC_PATHS = ("/login", "/favicon.ico")


def cookie_value(token: str) -> str:
    return hmac.new(token.encode(), b"slicerfm-web-cookie-v1", hashlib.sha256).hexdigest()


def token_matches(given: Optional[str], token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def request_is_authorised(request: web.Request, token: str) -> bool:
    if not token:
        return True
    cookie = request.cookies.get(COOKIE)
    if cookie is not None and hmac.compare_digest(cookie.encode(), cookie_value(token).encode()):
        return True
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer ") and token_matches(header[7:].strip(), token):
        return True
    return False


def set_cookie(response: web.StreamResponse, request: web.Request, token: str) -> None:
    response.set_cookie(COOKIE, cookie_value(token), httponly=True, samesite="Strict",
                        path="/", secure=request.secure)


def loopback_host_middleware():
    """Without a token the gateway listens on loopback only; it then also answers only
    requests addressed to a loopback name, so that a web page whose domain is made to resolve
    to 127.0.0.1 (DNS rebinding) cannot reach it from the user's own browser."""
    from ..settings import is_loopback

    @web.middleware
    async def check(request: web.Request, handler):
        try:
            host = request.url.host or ""
        except ValueError:                       # a Host header that is not a host
            host = ""
        if not is_loopback(host):
            return web.Response(status=421, text="this SlicerFM web server answers on "
                                                 "127.0.0.1 / localhost only")
        return await handler(request)
    return check


def auth_middleware(token: str):
    """Lets authorised requests through; ``?token=`` logs in; others go to the login page
    (HTML requests) or get 401 (API, websocket)."""
    @web.middleware
    async def check(request: web.Request, handler):
        if not token or request.path in PUBLIC_PATHS or request_is_authorised(request, token):
            return await handler(request)
        given = request.query.get("token")
        if given is not None:
            if token_matches(given, token):
                query = {k: v for k, v in request.query.items() if k != "token"}
                target = request.rel_url.with_query(query)
                response = web.HTTPFound(str(target))
                set_cookie(response, request, token)
                raise response
            return web.Response(status=401, text="wrong access token")
        if request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
            raise web.HTTPFound("/login")
        return web.Response(status=401, text="this SlicerFM web server needs its access token")
    return check


LOGIN_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>SlicerFM</title>
<style>body{{font-family:sans-serif;background:#222;color:#eee;display:flex;height:90vh;
align-items:center;justify-content:center}}form{{background:#333;padding:24px;border-radius:8px}}
input{{padding:6px;width:280px}}button{{padding:6px 14px;margin-left:6px}}.e{{color:#ef5350}}</style>
</head><body><form method="post" action="/login"><h3>SlicerFM</h3>
<p>This server needs the access token its administrator gave you.</p>
<input type="password" name="token" autofocus autocomplete="current-password">
<button type="submit">Open</button><p class="e">{error}</p></form></body></html>"""


async def login_page(request: web.Request) -> web.Response:
    return web.Response(text=LOGIN_PAGE.format(error=""), content_type="text/html")


def login_handler(token: str):
    async def login(request: web.Request) -> web.Response:
        form = await request.post()
        if token and token_matches(str(form.get("token", "")), token):
            response = web.HTTPFound("/")
            set_cookie(response, request, token)
            raise response
        return web.Response(text=LOGIN_PAGE.format(error="That token is not right."),
                            content_type="text/html", status=401)
    return login
