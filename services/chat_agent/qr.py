"""QR images of coupon codes, served to LINE as PNG at /coupons/{code}/qr.png."""

from __future__ import annotations

import io

import qrcode
from qrcode.constants import ERROR_CORRECT_M

# 10 px modules: a 30-character code fits version 2 (25 modules + 2×4 quiet zone),
# about 330 px square, big enough for a till scanner off a phone screen and far
# under LINE's 1 MB preview-image limit.
BOX_SIZE = 10
BORDER = 4  # the quiet zone the QR standard asks for
MAX_CODE_LENGTH = 256


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
