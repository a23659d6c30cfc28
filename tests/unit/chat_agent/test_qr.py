"""Coupon QR images decode back to the exact code."""

from __future__ import annotations

import io

import pytest
import zxingcpp
from PIL import Image

from services.chat_agent.line.qr import qr_png


def _decode(png: bytes) -> list[zxingcpp.Result]:
    return zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))


@pytest.mark.parametrize(
    "code",
    ["TN-ABCDE-FGHJK-MNPQR-STVWX-YZ0", "TN-00000-00000-00000-00000-000", "M0001", "x"],
)
def test_png_decodes_to_the_exact_code(code: str) -> None:
    png = qr_png(code)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    results = _decode(png)
    assert [r.text for r in results] == [code]
    assert results[0].format == zxingcpp.BarcodeFormat.QRCode
    assert results[0].ec_level == "M"


def test_size_is_reasonable_for_a_chat_image() -> None:
    png = qr_png("TN-ABCDE-FGHJK-MNPQR-STVWX-YZ0")
    width, height = Image.open(io.BytesIO(png)).size
    assert width == height and 200 <= width <= 600
    assert len(png) < 10_000  # LINE's preview-image limit is 1 MB


def test_same_code_same_bytes() -> None:
    assert qr_png("TN-ABC") == qr_png("TN-ABC")


@pytest.mark.parametrize("code", ["", "x" * 257])
def test_rejects_empty_or_oversized_codes(code: str) -> None:
    with pytest.raises(ValueError):
        qr_png(code)
