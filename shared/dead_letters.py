"""Dead-letter records with no personal data in the clear (docs/interfaces.md § Events, dead-letter records).

A poison message can hold anything a customer typed, a LINE user id, a member number. Its
dead-letter record therefore keeps in the clear only where it came from, the error's type
and a redacted error text. The original bytes and the full error are sealed with Fernet
(AES-128-CBC + HMAC-SHA256, from `cryptography`) under a key derived from
TENIN_SECRET_KEY; a loop given no key drops them and keeps their SHA-256 and size, so the
source record can still be found at its origin offset while the topic retains it.

An operator reads sealed records with the same secrets the services run with:

    kafka-console-consumer ... --topic pos.transactions.dlq | python -m shared.dead_letters

which prints each record with its `sealed` part opened (keys in TENIN_PREVIOUS_SECRET_KEYS
open records sealed before a rotation).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sys
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from shared.config import Settings
from shared.crypto import derive_key
from shared.db import utcnow

if TYPE_CHECKING:
    from shared.bus import Message

SEAL_LABEL = "tenin/dead-letters/v1"

# What a redacted error text must not show: pydantic's echo of the input, a LINE user id,
# and anything quoted (values in messages such as "member 'M1234567' is taken").
_REDACTIONS = (
    (re.compile(r"input_value=.*?(?=, input_type=|\]|$)", re.DOTALL), "input_value=<redacted>"),
    (re.compile(r"U[0-9a-f]{32}"), "<user-id>"),
    (re.compile(r"'[^'\n]*'|\"[^\"\n]*\""), "'…'"),
)


def redact(text: str) -> str:
    """An error text without the values it quoted: field names and reasons stay."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class DeadLetterSeal:
    """Seals the sensitive part of dead-letter records; opens those of current or past keys."""

    def __init__(self, secret_key: str, previous_secret_keys: Sequence[str] = ()) -> None:
        keys = [secret_key, *previous_secret_keys]
        self._fernet = MultiFernet([Fernet(_fernet_key(k)) for k in keys])

    @classmethod
    def for_settings(cls, settings: Settings) -> DeadLetterSeal:
        """The seal of a service's settings: TENIN_SECRET_KEY, and the keys it replaced."""
        return cls(settings.secret_key, settings.previous_secret_keys)

    def seal(self, secret: dict[str, Any]) -> str:
        """A Fernet token of `secret` (a JSON object)."""
        return self._fernet.encrypt(json.dumps(secret, ensure_ascii=False).encode()).decode()

    def open(self, token: str) -> dict[str, Any]:
        """The object a token sealed; ValueError when no known key sealed it."""
        try:
            opened: dict[str, Any] = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise ValueError("sealed under an unknown key (or tampered with)") from None
        return opened


def _fernet_key(secret_key: str) -> bytes:
    return base64.urlsafe_b64encode(derive_key(secret_key, SEAL_LABEL))


def dead_letter_body(
    message: Message,
    group_id: str,
    error: BaseException,
    attempts: int,
    seal: DeadLetterSeal | None = None,
) -> bytes:
    """The DLQ record: where the message came from, the error type and a redacted error
    text; the original bytes and the full error sealed under `seal`, or dropped without
    one (their SHA-256 and size stay) — never personal data in the clear."""
    try:
        original: str = message.value.decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError:
        original = base64.b64encode(message.value).decode("ascii")
        encoding = "base64"
    record: dict[str, Any] = {
        "error": redact(str(error))[:2000],
        "error_type": type(error).__name__,
        "attempts": attempts,
        "failed_at": utcnow().isoformat(),
        "origin": {
            "topic": message.topic,
            "partition": message.partition,
            "offset": message.offset,
            "key": message.key,  # a pseudonym or store id: topics are never keyed by raw ids
            "group": group_id,
        },
        "original_sha256": hashlib.sha256(message.value).hexdigest(),
        "original_bytes": len(message.value),
    }
    if seal is not None:
        record["sealed"] = seal.seal(
            {
                "error": str(error)[:2000],
                "traceback": "".join(traceback.format_exception(error))[-8000:],
                "original_encoding": encoding,
                "original": original,
            }
        )
    return json.dumps(record, ensure_ascii=False).encode("utf-8")


def main() -> int:
    """Dead-letter records (one JSON object a line) on stdin, printed with `sealed` opened."""
    seal = DeadLetterSeal.for_settings(Settings.from_env())
    for line in sys.stdin:
        if not line.strip():
            continue
        record = json.loads(line)
        if "sealed" in record:
            record["sealed"] = seal.open(record["sealed"])
        print(json.dumps(record, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
