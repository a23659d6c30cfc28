"""schemathesis hooks for the tenin fuzz run (loaded through SCHEMATHESIS_HOOKS).

The LINE webhook only looks inside bodies whose `X-Line-Signature` is the HMAC of the
raw bytes, so a request that carries the header is signed over the exact bytes sent
(a requests auth hook runs after the body is encoded). A request without the header
stays unsigned, so the missing-header checks still see the 4xx they expect.

`before_load_schema` gives a few request bodies a valid example (EXAMPLES), so the fuzzer
starts from data the API accepts despite rules JSON Schema cannot state.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
import schemathesis

SECRET_VARIABLE = "TENIN_FUZZ_LINE_CHANNEL_SECRET"
FUZZ_STORE = "S-FUZZ"  # the store of the run's pos key (tests/fuzz/stack.py)
SIGNATURE = "X-Line-Signature"


class LineSignature(requests.auth.AuthBase):
    """Sets X-Line-Signature to the base64 HMAC-SHA256 of the prepared body."""

    def __init__(self, channel_secret: str) -> None:
        self.key = channel_secret.encode()

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if SIGNATURE not in request.headers:
            return request
        body = request.body or b""
        raw = body.encode() if isinstance(body, str) else body
        digest = hmac.new(self.key, raw, hashlib.sha256).digest()
        request.headers[SIGNATURE] = base64.b64encode(digest).decode()
        return request


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    secret = os.environ.get(SECRET_VARIABLE)
    if secret and case.operation.path == "/webhooks/line":
        kwargs["auth"] = LineSignature(secret)


def _valid_campaign() -> dict[str, Any]:
    """A campaign body the API accepts: its cross-field rules are beyond JSON Schema."""
    now = datetime.now(UTC)
    return {
        "name": "fuzz campaign",
        "starts_at": (now + timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(days=30)).isoformat(),
        "offers": [
            {
                "title": "50 yen off onigiri",
                "discount": {"type": "amount", "value": 50},
                "applies_to": {"categories": ["onigiri"]},
                "min_basket": 0,
                "valid_hours": 72,
            }
        ],
        "budget": {"max_coupons": 1000},
        "caps": {"per_customer_per_day": 1, "per_customer_total": 3},
        "holdout_pct": 10,
        "revenue_share": {"pct": 5, "basis": "attributed"},
    }


def _valid_batch() -> dict[str, Any]:
    """A till batch of one clean sale for the fuzz store."""
    return {
        "store_id": FUZZ_STORE,
        "transactions": [
            {
                "transaction_id": "fuzz-example-1",
                "occurred_at": datetime.now(UTC).isoformat(),
                "currency": "JPY",
                "total": 380,
                "items": [
                    {"sku": "4901234567890", "category": "onigiri", "qty": 2, "unit_price": 190}
                ],
            }
        ],
    }


# Request bodies the document leaves without an example: a valid one to start from lets the
# examples and stateful phases create resources and follow the links to them.
EXAMPLES: dict[tuple[str, str], Callable[[], dict[str, Any]]] = {
    ("/v1/campaigns", "post"): _valid_campaign,
    ("/v1/pos/transactions", "post"): _valid_batch,
}


@schemathesis.hook
def before_load_schema(context: Any, raw_schema: dict[str, Any]) -> None:
    for (path, method), example in EXAMPLES.items():
        operation = raw_schema.get("paths", {}).get(path, {}).get(method)
        if operation is None or "requestBody" not in operation:
            continue
        media = operation["requestBody"]["content"].get("application/json", {})
        media.setdefault("example", example())
