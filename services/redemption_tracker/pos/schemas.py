"""Request and response models of the POS feed, voids and the pre-check.

The same models validate requests and generate `/openapi.json`. A batch is validated
transaction by transaction, so one malformed transaction is rejected by field
(`transactions.3.total`) while the others are processed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from shared.fields import BoundedDatetime, Code, Ident, LongText, Money, PlainText
from shared.http import validation_errors

MAX_BATCH = 1000
StoreId = Annotated[Ident, Field(max_length=64)]
Short = Annotated[PlainText, Field(max_length=64)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Item(Model):
    sku: Short
    category: Annotated[PlainText, Field(min_length=0, max_length=64)] | None = None
    qty: Annotated[int, Field(strict=True, ge=1, le=100_000)]
    unit_price: Money


class PosTransaction(Model):
    """One till transaction (docs/interfaces.md § POS feed); `total` is the basket before coupon discounts."""

    transaction_id: Ident
    occurred_at: BoundedDatetime
    member_id: Short | None = None
    currency: Literal["JPY"] = "JPY"
    total: Money
    # default_factory: a literal [] default is deep-copied for every transaction.
    items: Annotated[list[Item], Field(max_length=500, default_factory=list)]
    coupon_codes: Annotated[
        # An empty code is answered `unknown_code`, as any other code that does not parse.
        list[Annotated[Code, Field(min_length=0)]],
        Field(max_length=10, default_factory=list),
    ]
    # Only on the `pos.transactions` topic, where a message is one transaction.
    store_id: StoreId | None = None


class PosBatch(Model):
    store_id: StoreId
    transactions: Annotated[list[Any], Field(min_length=1, max_length=MAX_BATCH)]


class PosBatchDoc(Model):
    """The documented shape of a batch (validation itself goes transaction by transaction)."""

    store_id: StoreId
    transactions: Annotated[list[PosTransaction], Field(min_length=1, max_length=MAX_BATCH)]


class FieldError(BaseModel):
    field: str
    message: str


class CouponResult(BaseModel):
    code: str
    status: Literal["redeemed", "rejected"]
    reason: str | None = None
    discount: int = 0


class TransactionResult(BaseModel):
    transaction_id: str | None
    status: Literal["accepted", "duplicate", "rejected"]
    errors: list[FieldError] = []
    coupons: list[CouponResult] = []


class BatchResult(BaseModel):
    results: list[TransactionResult]


class VoidRequest(Model):
    store_id: StoreId
    transaction_id: Ident
    occurred_at: BoundedDatetime
    reason: Annotated[LongText, Field(max_length=200)]


class VoidedCoupon(BaseModel):
    code: str
    discount: int
    reusable: bool


class VoidResult(BaseModel):
    transaction_id: str
    status: Literal["voided", "already_voided"]
    coupons: list[VoidedCoupon]


class PrecheckResult(BaseModel):
    code: str
    valid: bool
    reason: str | None
    offer: dict[str, Any] | None
    expires_at: AwareDatetime | None


# --- per-transaction validation ---------------------------------------------------------

_TX = TypeAdapter(PosTransaction)
_TX_LIST = TypeAdapter(list[PosTransaction])


class Rejected:
    """A transaction that failed validation: what the client gets back for it."""

    __slots__ = ("errors", "transaction_id")

    def __init__(self, transaction_id: str | None, errors: list[dict[str, str]]) -> None:
        self.transaction_id = transaction_id
        self.errors = errors


def validate_transactions(raw: list[Any]) -> list[PosTransaction | Rejected]:
    """Each raw transaction validated; the fast path validates the whole list at once."""
    try:
        return list(_TX_LIST.validate_python(raw))
    except ValidationError:
        pass
    out: list[PosTransaction | Rejected] = []
    for i, item in enumerate(raw):
        try:
            out.append(_TX.validate_python(item))
        except ValidationError as exc:
            tx_id = item.get("transaction_id") if isinstance(item, dict) else None
            out.append(
                Rejected(
                    tx_id if isinstance(tx_id, str) else None,
                    validation_errors(exc, f"transactions.{i}"),
                )
            )
    return out


def validate_one(raw: Any) -> PosTransaction:
    """One transaction (the topic path); raises ValidationError."""
    return _TX.validate_python(raw)
