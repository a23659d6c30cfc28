"""QR images of coupon codes, served to LINE as PNG at /coupons/{code}/qr.png.

The route is public (LINE fetches the image), so it renders only genuine codes: the
signature is checked first, under the current key and those it replaced, and a forged
or malformed code gets a 404 problem before any image work (about 3 ms a render).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence

import qrcode
from flask import Blueprint, Response
from qrcode.constants import ERROR_CORRECT_M

from shared.coupons import CodeRejected, ForgedCode, coupon_key, normalize_code, verify_code
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


def genuine_code(keys: Sequence[bytes], code: str) -> str:
    """The canonical form of a code signed under one of `keys`; CodeRejected otherwise."""
    canonical = normalize_code(code)
    for key in keys:
        try:
            verify_code(key, canonical)
        except ForgedCode:
            continue
        return canonical
    raise ForgedCode("signed under none of the keys")


def qr_blueprint(secret_keys: Sequence[str]) -> Blueprint:
    """GET /coupons/<code>/qr.png for codes signed under `secret_keys` (current first).

    docs/interfaces.md § Messaging webhook.
    """
    bp = Blueprint("coupons", __name__)
    keys = [coupon_key(secret) for secret in secret_keys]

    @bp.get("/coupons/<code>/qr.png")
    def coupon_qr(code: str) -> Response:
        """The QR image of a coupon code (public: LINE fetches it to show the customer)."""
        try:
            canonical = genuine_code(keys, code)
        except CodeRejected:
            errors = [{"field": "code", "message": "not a coupon code tenin issued"}]
            raise ProblemError(404, "Not Found", "not a coupon code", errors=errors) from None
        response = Response(_cached_png(canonical), mimetype="image/png")
        # The image of a code never changes.
        response.headers["Cache-Control"] = "public, max-age=86400, immutable"
        return response

    return bp
