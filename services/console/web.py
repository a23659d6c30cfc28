"""Small helpers every console page uses: the app's `Console`, the signed-in key, texts in
the page's language and the field errors of an API problem (docs/console.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import abort, current_app, flash, g, request, session

from services.console import i18n
from services.console.api_client import ApiProblem

if TYPE_CHECKING:
    from services.console.api_client import ApiClient
    from services.console.config import ConsoleConfig
    from shared.ratelimit import Bucket, RateLimiter

KEY = "key"


class Console:
    """What every view needs: the config, the API client and the sign-in limiter."""

    def __init__(
        self, *, config: ConsoleConfig, api: ApiClient, limiter: RateLimiter, sign_in_bucket: Bucket
    ) -> None:
        self.config = config
        self.api = api
        self.limiter = limiter
        self.sign_in_bucket = sign_in_bucket


def console() -> Console:
    found: Console = current_app.extensions["console"]
    return found


def signed_in_key() -> str:
    """The marketer key of this session (views run only for signed-in sessions)."""
    key: str = session[KEY]
    return key


def text(message: str, **kw: object) -> str:
    """`message` in the page's language."""
    lang = getattr(g, "lang", None) or i18n.choose_language(request)
    return i18n.translate(message, lang).format(**kw)


def notify(message: str, **kw: object) -> None:
    """A flash message shown in the next page's status region."""
    flash(text(message, **kw))


def field_errors(
    problem: ApiProblem, names: list[str], alias: Callable[[str], str] = lambda path: path
) -> tuple[dict[str, str], list[str]]:
    """The problem's errors by form field, and those that name no field, as sentences.

    An error lands on the field of that name, else on the first form field inside the
    named object, else on the longest form field the named path starts with. `alias`
    first renames paths the form spells differently.
    """
    by_field: dict[str, str] = {}
    loose: list[str] = []
    for error in problem.errors:
        name = _form_field(alias(error.get("field", "")), names)
        message = error.get("message") or problem.detail
        if name is None:
            named = error.get("field") not in (None, "", "body")
            loose.append(f"{error.get('field')}: {message}" if named else message)
        else:
            by_field[name] = f"{by_field[name]} {message}" if name in by_field else message
    if not problem.errors and problem.detail:
        loose.append(problem.detail)
    return by_field, loose


def _form_field(path: str, names: list[str]) -> str | None:
    if not path or path == "body":
        return None
    if path in names:
        return path
    inside = [n for n in names if n.startswith(path + ".")]
    if inside:
        return inside[0]
    parents = [n for n in names if path.startswith(n + ".")]
    return max(parents, key=len) if parents else None


def campaign_or_404(campaign_id: str) -> dict[str, Any]:
    """The campaign from the engine, or this page is a 404 (unknown, or not an id at all)."""
    try:
        return console().api.campaign(signed_in_key(), campaign_id)
    except ApiProblem as problem:
        if problem.status in (404, 422):
            abort(404)
        raise
