"""The console's security model against the real APIs (docs/console.md § Security model):
CSRF, who may sign in, signed-out access, the key never leaving the server, session
rotation and idle expiry, the sign-in rate limit, cookie flags and headers."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.console.sessions import COOKIE_NAME
from tests.integration.console.conftest import Apis, Clock, csrf_of, sign_in

pytestmark = pytest.mark.integration


def _cookie(client: FlaskClient) -> str | None:
    found = client.get_cookie(COOKIE_NAME)
    return None if found is None else found.value


def test_a_form_post_without_the_csrf_token_is_refused(signed_in: FlaskClient, apis: Apis) -> None:
    name = "csrf-less campaign"
    answer = signed_in.post("/campaigns/new", data={"name": name})
    assert answer.status_code == 400
    assert "CSRF" in answer.get_data(as_text=True)
    assert "<h1>Request refused</h1>" in answer.get_data(as_text=True)  # in the page's language
    wrong = signed_in.post("/campaigns/new", data={"name": name, "csrf_token": "forged"})
    assert wrong.status_code == 400
    listing = signed_in.get("/campaigns?q=csrf-less").get_data(as_text=True)
    assert name not in listing  # nothing was created


@pytest.mark.parametrize(
    ("role", "status", "message"),
    [
        ("pos", 403, "This key is not a marketer key."),
        ("members", 403, "This key is not a marketer key."),
        (None, 401, "This key was not accepted."),
    ],
)
def test_only_a_marketer_key_signs_in(
    console: Flask, apis: Apis, role: str | None, status: int, message: str
) -> None:
    client = console.test_client()
    client.set_cookie("console_lang", "en")
    key = apis.keys[role] if role else "tn_000000000000_" + "x" * 43
    answer = client.post("/sign-in", data={"key": key, "csrf_token": csrf_of(client)})
    assert answer.status_code == status
    page = answer.get_data(as_text=True)
    # The message sits by the key field and is tied to it.
    assert re.search(r'aria-describedby="error-key"', page)
    assert f'<p class="field-error" id="error-key">{message}</p>' in page
    assert key not in page
    assert client.get("/campaigns").status_code == 303  # still signed out


def test_an_admin_key_signs_in(console: Flask, apis: Apis) -> None:
    client = console.test_client()
    sign_in(client, apis.keys["admin"])
    assert client.get("/campaigns").status_code == 200


def _routes(app: Flask) -> list[tuple[str, str]]:
    """Every (method, path) the console serves except the public ones, ids filled in."""
    public = {"auth.sign_in", "auth.language", "healthz", "static"}
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in public:
            continue
        values = {arg: "activate" if arg == "action" else "c0ffee" for arg in rule.arguments}
        path = rule.build(values)[1]  # type: ignore[index]  # build() returns (domain, path)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, path))
    return found


def test_a_signed_out_session_reaches_no_page(console: Flask) -> None:
    routes = _routes(console)
    assert len(routes) >= 20  # every page, fragment and action of the console
    client = console.test_client()
    token = csrf_of(client)  # a valid token of a signed-out session: CSRF is not what stops it
    for method, path in routes:
        answer = client.open(path, method=method, data={"csrf_token": token})
        assert answer.status_code == 303, (method, path, answer.status_code)
        assert answer.headers["Location"].startswith("/sign-in?next="), (method, path)
        fragment = client.open(
            path, method=method, data={"csrf_token": token}, headers={"HX-Request": "true"}
        )
        assert fragment.status_code == 401 and fragment.headers["HX-Redirect"].startswith(
            "/sign-in"
        )


def test_the_key_appears_in_no_page_url_cookie_or_log(
    signed_in: FlaskClient,
    apis: Apis,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    key = apis.keys["marketer"]
    # The key is `tn_<id>_<secret>` and a token_urlsafe secret may itself hold "_":
    # split as `shared.auth.authenticate` does, or a short tail can match by chance.
    secret = key.split("_", 2)[2]
    assert len(secret) >= 40
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    token = csrf_of(signed_in, "/campaigns/new")
    created = signed_in.post(
        "/campaigns/new",
        data={"csrf_token": token, "name": "", "starts_at": "2026-12-01T09:00"},
    )
    for answer in [
        created,
        signed_in.get("/campaigns"),
        signed_in.get("/campaigns/new"),
        signed_in.get("/explain?coupon_code=TN-XXXX"),
        signed_in.get("/statements"),
        signed_in.get("/models"),
    ]:
        assert answer.status_code < 500, answer.get_data(as_text=True)[:500]
        seen += [answer.get_data(as_text=True), str(answer.headers)]
    seen.append(_cookie(signed_in) or "")
    out, err = capfd.readouterr()
    seen += [out, err, caplog.text]
    leaks = [
        text[max(0, text.find(secret) - 300) : text.find(secret) + 60]
        for text in seen
        if secret in text
    ]
    assert leaks == []


def test_signing_in_rotates_the_session_id(console: Flask, apis: Apis) -> None:
    client = console.test_client()
    csrf_of(client)
    before = _cookie(client)
    assert before
    sign_in(client, apis.keys["marketer"])
    after = _cookie(client)
    assert after and after != before
    planted = console.test_client()  # an attacker who planted `before` gains nothing
    planted.set_cookie(COOKIE_NAME, before)
    assert planted.get("/campaigns").status_code == 303
    assert client.get("/campaigns").status_code == 200


def test_an_idle_session_expires(
    make_console: Callable[..., Flask], apis: Apis, clock: Clock
) -> None:
    client = make_console(idle_seconds=60).test_client()
    sign_in(client, apis.keys["marketer"])
    for _ in range(3):  # activity keeps it alive past the idle time in total
        clock.now += 50
        assert client.get("/campaigns").status_code == 200
    clock.now += 61
    answer = client.get("/campaigns")
    assert answer.status_code == 303 and answer.headers["Location"].startswith("/sign-in")


def test_live_region_polls_do_not_keep_an_idle_session_alive(
    make_console: Callable[..., Flask], apis: Apis, clock: Clock
) -> None:
    client = make_console(idle_seconds=60).test_client()
    sign_in(client, apis.keys["marketer"])
    poll = {"HX-Request": "true"}
    live = f"/campaigns/{uuid.uuid4()}/live"
    clock.now += 40
    assert client.get(live, headers=poll).status_code == 200  # still within the idle time
    clock.now += 40  # 80 s since the marketer last did anything
    expired = client.get(live, headers=poll)
    assert expired.status_code == 401 and expired.headers["HX-Redirect"].startswith("/sign-in")


def test_sign_out_ends_the_session(signed_in: FlaskClient, console: Flask) -> None:
    old = _cookie(signed_in)
    token = csrf_of(signed_in, "/campaigns")
    answer = signed_in.post("/sign-out", data={"csrf_token": token})
    assert answer.status_code == 303 and answer.headers["Location"] == "/sign-in?signed_out=1"
    assert "Signed out." in signed_in.get("/sign-in?signed_out=1").get_data(as_text=True)
    replay = console.test_client()
    replay.set_cookie(COOKIE_NAME, str(old))
    assert replay.get("/campaigns").status_code == 303


def test_failed_sign_ins_are_rate_limited_per_address(
    make_console: Callable[..., Flask], apis: Apis
) -> None:
    app = make_console(sign_in_burst=3)
    client = app.test_client()
    client.set_cookie("console_lang", "en")
    token = csrf_of(client)
    wrong = {"key": "tn_000000000000_" + "y" * 43, "csrf_token": token}
    assert [client.post("/sign-in", data=wrong).status_code for _ in range(3)] == [401] * 3
    refused = client.post("/sign-in", data={"key": apis.keys["marketer"], "csrf_token": token})
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert "Too many failed sign-ins" in refused.get_data(as_text=True)
    other = app.test_client()  # another address has its own bucket
    other_token = csrf_of(other)
    answer = other.post(
        "/sign-in",
        data={"key": apis.keys["marketer"], "csrf_token": other_token},
        environ_overrides={"REMOTE_ADDR": "10.9.8.7"},
    )
    assert answer.status_code == 303


def test_cookie_flags_and_security_headers(console: Flask) -> None:
    client = console.test_client()
    answer = client.get("/sign-in")
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    csp = answer.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "same-origin"
    assert "<script>" not in answer.get_data(as_text=True)  # no inline script at all
    secure = console.test_client().get("/sign-in", base_url="https://console.example")
    assert "Secure" in secure.headers["Set-Cookie"]


def test_next_after_sign_in_stays_on_this_site(console: Flask, apis: Apis) -> None:
    client = console.test_client()
    token = csrf_of(client)
    answer = client.post(
        "/sign-in",
        data={"key": apis.keys["marketer"], "csrf_token": token, "next": "//evil.example/x"},
    )
    assert answer.headers["Location"] == "/campaigns"
