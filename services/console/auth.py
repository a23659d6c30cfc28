"""Signing in and out with a marketer key (docs/console.md § Security model).

The key is checked by calling the campaign API with it: 401 means unknown or revoked,
403 means another role (a pos or members key). Every attempt takes a token from the
client address's `console_sign_in` bucket (shared/ratelimit), so guessing keys is slow.
On success the session gets a new id and a new CSRF token, and keeps the key server-side.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue

from services.console.api_client import ApiProblem
from services.console.sessions import ServerSession
from services.console.web import KEY, console, text

PUBLIC_ENDPOINTS = {"auth.sign_in", "auth.language", "healthz", "static"}
MAX_KEY_LENGTH = 200


def auth_blueprint() -> Blueprint:
    bp = Blueprint("auth", __name__)
    bp.add_url_rule("/sign-in", "sign_in", sign_in, methods=["GET", "POST"])
    bp.add_url_rule("/sign-out", "sign_out", sign_out, methods=["POST"])
    bp.add_url_rule("/language/<lang>", "language", language)
    return bp


def require_sign_in() -> ResponseReturnValue | None:
    """Before every request: a page needs a signed-in session (htmx gets 401 + HX-Redirect)."""
    if request.endpoint in PUBLIC_ENDPOINTS or KEY in session:
        return None
    target = url_for("auth.sign_in", next=request.full_path.rstrip("?"))
    if request.headers.get("HX-Request"):
        return "", 401, {"HX-Redirect": target}
    return redirect(target, 303)


def sign_in() -> ResponseReturnValue:
    next_path = safe_next(request.values.get("next"))
    if request.method == "GET":
        if KEY in session:
            return redirect(next_path, 303)
        signed_out = request.args.get("signed_out") == "1"
        page = render_template("sign_in.html", next=next_path, error=None, signed_out=signed_out)
        return page, 200
    key = (request.form.get("key") or "").strip()
    verdict = console().limiter.take(console().sign_in_bucket, request.remote_addr or "unknown")
    if not verdict.allowed:
        seconds = max(1, round(verdict.retry_after_s + 0.5))
        message = text("Too many failed sign-ins. Try again in {n} seconds.", n=seconds)
        return _refused(message, next_path, 429, {"Retry-After": str(seconds)})
    if not key or len(key) > MAX_KEY_LENGTH:
        return _refused(text("Enter your marketer key."), next_path, 422)
    try:
        console().api.check_key(key)
    except ApiProblem as problem:
        if problem.status == 403:
            return _refused(text("This key is not a marketer key."), next_path, 403)
        if problem.status == 429:
            return _refused(problem.detail or problem.title, next_path, 429)
        return _refused(text("This key was not accepted."), next_path, 401)
    assert isinstance(session, ServerSession)
    session.clear()  # nothing from before sign-in survives, the CSRF token included
    session.rotate()
    session[KEY] = key
    return redirect(next_path, 303)


def _refused(
    message: str, next_path: str, status: int, headers: dict[str, str] | None = None
) -> ResponseReturnValue:
    page = render_template("sign_in.html", next=next_path, error=message)
    return Response(page, status=status, headers=headers or {})


def sign_out() -> ResponseReturnValue:
    assert isinstance(session, ServerSession)
    session.end()  # the ended session cannot carry a flash: the sign-in page says it
    return redirect(url_for("auth.sign_in", signed_out=1), 303)


def language(lang: str) -> ResponseReturnValue:
    """The language switch: a cookie, then back where the marketer was."""
    from services.console.i18n import LANG_COOKIE, LANGUAGES

    response = redirect(safe_next(request.args.get("next")), 303)
    if lang in LANGUAGES:
        response.set_cookie(
            LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="Lax", httponly=True
        )
    return response


def safe_next(raw: str | None) -> str:
    """A local path to go on to after signing in; anything else goes to the campaigns."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return "/campaigns"
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc:
        return "/campaigns"
    return raw
