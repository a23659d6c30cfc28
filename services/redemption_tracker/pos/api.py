"""The POS feed over HTTP: transactions, voids and the till's pre-check (POS keys).

docs/interfaces.md § POS feed. A POS key posts only for its own store; admin keys for any.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request
from pydantic import ValidationError
from pydantic_core import to_json

from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.pos.ingest import ingest
from services.redemption_tracker.pos.precheck import precheck
from services.redemption_tracker.pos.schemas import (
    MAX_BATCH,
    BatchResult,
    PosBatch,
    PosBatchDoc,
    PosTransaction,
    PrecheckResult,
    Rejected,
    VoidRequest,
    VoidResult,
    validate_transactions,
)
from services.redemption_tracker.pos.voids import void_transaction
from shared.auth import require_role
from shared.http import (
    Operation,
    field_problem,
    parse_json_body,
    path_parameter,
    query_parameter,
)

OPERATIONS = [
    Operation(
        "POST",
        "/v1/pos/transactions",
        f"Record up to {MAX_BATCH} till transactions; one result each",
        PosBatchDoc,
        BatchResult,
    ),
    Operation("POST", "/v1/pos/voids", "Void a transaction (idempotent)", VoidRequest, VoidResult),
    Operation(
        "GET",
        "/v1/coupons/{code}",
        "Pre-check a code at the till (changes nothing)",
        None,
        PrecheckResult,
        parameters=[path_parameter("code"), query_parameter("store_id")],
    ),
]


def _own_store(body_store: str) -> None:
    """A POS key posts only for its own store (admin keys for any)."""
    principal = g.principal
    if principal.role != "admin" and principal.store_id != body_store:
        raise field_problem(
            403,
            "Forbidden",
            f"this key belongs to store {principal.store_id!r}, not {body_store!r}",
            field="store_id",
            message="not your store",
        )


def _read_batch() -> tuple[str, list[PosTransaction | Rejected]]:
    """The batch's store and transactions, each validated or rejected by field.

    A batch that is valid throughout (the usual case) is validated from its JSON bytes in
    one call; anything else takes the general path, which parses the JSON, names a
    malformed body or store, and validates transaction by transaction so that one bad
    transaction is rejected while the others are processed. Both give the same values.
    """
    if request.is_json:
        try:
            whole = PosBatchDoc.model_validate_json(request.get_data(cache=True))
        except ValidationError:
            pass  # the general path says what is wrong, and where
        else:
            return whole.store_id, [*whole.transactions]
    batch = parse_json_body(PosBatch)
    return batch.store_id, validate_transactions(batch.transactions)


def pos_blueprint(tracker: Tracker) -> Blueprint:
    """POST /v1/pos/transactions, POST /v1/pos/voids, GET /v1/coupons/{code}."""
    bp = Blueprint("pos", __name__)
    pos_only = require_role("pos", sessions=tracker.sessions, secret=tracker.api_key_secrets)

    @bp.post("/v1/pos/transactions")
    @pos_only
    def post_transactions() -> Response:
        store_id, transactions = _read_batch()
        _own_store(store_id)
        results = ingest(tracker, store_id, transactions)
        # Serialised in Rust: a 1,000-result answer is the largest thing the tracker sends.
        return Response(to_json({"results": results}), mimetype="application/json")

    @bp.post("/v1/pos/voids")
    @pos_only
    def post_void() -> Response:
        req = parse_json_body(VoidRequest)
        _own_store(req.store_id)
        return jsonify(void_transaction(tracker, req.store_id, req))

    @bp.get("/v1/coupons/<path:code>")
    @pos_only
    def get_coupon(code: str) -> Response:
        store_id = request.args.get("store_id") or g.principal.store_id or ""
        if g.principal.store_id is not None:
            _own_store(store_id)
        result = precheck(tracker, code, store_id)
        if result["expires_at"] is not None:
            result["expires_at"] = result["expires_at"].isoformat()
        return jsonify(result)

    return bp
