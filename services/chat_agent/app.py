"""The chat_agent HTTP app: the LINE webhook, coupon QR images, ops and OpenAPI."""

from __future__ import annotations

import functools

from flask import Blueprint, Flask, Response
from pydantic import BaseModel, ConfigDict

from services.chat_agent import bootstrap, qr, webhook
from services.chat_agent.line_events import WebhookBody
from shared.config import Settings
from shared.coupons import CodeRejected, normalize_code
from shared.http import Operation, ProblemError, path_parameter, service_app
from shared.logging import configure_logging

SERVICE = "chat_agent"

coupons = Blueprint("coupons", __name__)


@functools.lru_cache(maxsize=1024)
def _qr_png(code: str) -> bytes:
    return qr.qr_png(code)


@coupons.get("/coupons/<code>/qr.png")
def coupon_qr(code: str) -> Response:
    """The QR image of a coupon code (public: LINE fetches it to show the customer)."""
    try:
        canonical = normalize_code(code)
    except CodeRejected:
        raise ProblemError(
            404,
            "Not Found",
            "not a coupon code",
            errors=[{"field": "code", "message": "not a well-formed coupon code"}],
        ) from None
    response = Response(_qr_png(canonical), mimetype="image/png")
    # The image of a code never changes.
    response.headers["Cache-Control"] = "public, max-age=86400, immutable"
    return response


class WebhookAck(BaseModel):
    model_config = ConfigDict(extra="forbid")


OPERATIONS = [
    Operation(
        "POST",
        "/webhooks/line",
        "LINE Messaging API webhook (X-Line-Signature: base64 HMAC-SHA256 of the raw body)",
        request_model=WebhookBody,
        response_model=WebhookAck,
        secured=False,
        parameters=[
            {
                "name": "X-Line-Signature",
                "in": "header",
                "required": True,
                "schema": {"type": "string"},
            }
        ],
    ),
    Operation(
        "GET",
        "/coupons/{code}/qr.png",
        "QR code image of a coupon code",
        secured=False,
        content_type="image/png",
        parameters=[path_parameter("code")],
    ),
]


def create_app(settings: Settings | None = None, *, web: bootstrap.Web | None = None) -> Flask:
    """The application factory; nothing connects until a request needs it."""
    if settings is None:
        settings = Settings.from_env(service=SERVICE)
        configure_logging(SERVICE, settings.log_level, settings.log_json)
    web = web or bootstrap.web(settings)
    return service_app(
        SERVICE,
        title="tenin chat_agent",
        max_request_bytes=settings.max_request_bytes,
        blueprints=[
            webhook.webhook_blueprint(settings.line_channel_secret, web.publisher),
            coupons,
        ],
        operations=OPERATIONS,
        readiness=web.readiness,
    )
