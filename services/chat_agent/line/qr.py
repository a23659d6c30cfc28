"""QR images of coupon codes, served to LINE as PNG at /coupons/{code}/qr.png."""

from __future__ import annotations

import functools
import io

import qrcode
from flask import Blueprint, Response
from qrcode.constants import ERROR_CORRECT_M

from shared.coupons import CodeRejected, normalize_code
from shared.http import Operation, ProblemError, path_parameter

# 10 px modules: a 30-character code fits version 2 (25 modules + 2×4 quiet zone),
# about 330 px square, big enough for a till scanner off a phone screen and far
# under LINE's 1 MB preview-image limit.
BOX_SIZE = 10
BORDER = 4  # the quiet zone the QR standard asks for
MAX_CODE_LENGTH = 256

OPERATIONS = [
    Operation(
        "GET",
        "/coupons/{code}/qr.png",
        "QR code image of a coupon code",
        secured=False,
        content_type="image/png",
        parameters=[path_parameter("code")],
    ),
]


def qr_png(code: str, *, box_size: int = BOX_SIZE) -> bytes:
    """PNG bytes of a black-on-white QR code (error correction M) encoding ``code``."""
    if not code or len(code) > MAX_CODE_LENGTH:
        raise ValueError(f"coupon code must be 1..{MAX_CODE_LENGTH} characters")
    image = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=box_size, border=BORDER)
    image.add_data(code)
    image.make(fit=True)
    buffer = io.BytesIO()
    image.make_image(fill_color="black", back_color="white").save(buffer, format="PNG")
    return buffer.getvalue()


@functools.lru_cache(maxsize=1024)
def _cached_png(code: str) -> bytes:
    return qr_png(code)


def qr_blueprint() -> Blueprint:
    """GET /coupons/<code>/qr.png (docs/interfaces.md § Messaging webhook)."""
    bp = Blueprint("coupons", __name__)

    @bp.get("/coupons/<code>/qr.png")
    def coupon_qr(code: str) -> Response:
        """The QR image of a coupon code (public: LINE fetches it to show the customer)."""
        try:
            canonical = normalize_code(code)
        except CodeRejected:
            errors = [{"field": "code", "message": "not a well-formed coupon code"}]
            raise ProblemError(404, "Not Found", "not a coupon code", errors=errors) from None
        response = Response(_cached_png(canonical), mimetype="image/png")
        # The image of a code never changes.
        response.headers["Cache-Control"] = "public, max-age=86400, immutable"
        return response

    return bp
