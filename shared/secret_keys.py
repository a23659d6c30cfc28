"""The secrets a tenin process runs on: what makes one unusable, and where the embedded
default keeps its own (docs/architecture.md § Secrets and key rotation).

Outside the embedded default a process refuses to start on a secret that is missing, a
value ever published in tenin's source or docs, too short, or a run of a few characters:
with a public channel secret anyone could sign webhooks, with a public secret key anyone
could mint coupon codes the tills accept.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
from pathlib import Path

SECRET_KEY = "TENIN_SECRET_KEY"
PREVIOUS_SECRET_KEYS = "TENIN_PREVIOUS_SECRET_KEYS"
PSEUDONYM_KEY = "TENIN_PSEUDONYM_KEY"
CHANNEL_SECRET = "LINE_CHANNEL_SECRET"
CHANNEL_ACCESS_TOKEN = "LINE_CHANNEL_ACCESS_TOKEN"
REQUIRED = (SECRET_KEY, CHANNEL_SECRET, CHANNEL_ACCESS_TOKEN)

# Bytes (UTF-8). TENIN_SECRET_KEY is an HMAC-SHA256 key: 32 bytes is its full strength.
# LINE issues channel secrets as 32 hex characters and channel access tokens far longer
# (a long-lived token is ~170 characters), so 32 rejects placeholders, never a real one.
MIN_BYTES = {
    SECRET_KEY: 32,
    PREVIOUS_SECRET_KEYS: 32,
    PSEUDONYM_KEY: 32,
    CHANNEL_SECRET: 32,
    CHANNEL_ACCESS_TOKEN: 32,
}
MIN_DISTINCT_CHARS = 8  # "x" * 32 is long enough and still a placeholder

# Values that appeared in tenin's source, docs or compose files: public, so never secret.
KNOWN_DEFAULTS = frozenset(
    {
        "tenin-dev-secret-change-me",
        "dev-channel-secret",
        "dev-channel-token",
        "change-me",
        "changeme",
        "secret",
    }
)

EMBEDDED_SECRETS_FILE = "secrets.json"


def secret_problem(name: str, value: str) -> str | None:
    """Why `value` cannot serve as the secret `name`, or None when it can.

    The message names the variable and never repeats the value.
    """
    if not value:
        return f"{name} is not set"
    if value in KNOWN_DEFAULTS or value.lower() in KNOWN_DEFAULTS:
        return f"{name} is a published default value, so anyone knows it"
    minimum = MIN_BYTES.get(name.split()[0], 32)
    if len(value.encode("utf-8")) < minimum:
        return f"{name} is shorter than {minimum} bytes"
    if len(set(value)) < MIN_DISTINCT_CHARS:
        return f"{name} repeats fewer than {MIN_DISTINCT_CHARS} distinct characters"
    return None


def fresh_secrets() -> dict[str, str]:
    """New random values for the three required secrets (the embedded default, tests)."""
    return {
        SECRET_KEY: secrets.token_urlsafe(48),
        CHANNEL_SECRET: secrets.token_hex(16),  # LINE's own shape: 32 hex characters
        CHANNEL_ACCESS_TOKEN: secrets.token_urlsafe(64),
    }


def embedded_secrets(data_dir: Path) -> dict[str, str]:
    """The embedded default's secrets: random per data directory, kept in it.

    Every process of one run reads the same data directory, so they all share the
    secrets (codes issued by one verify at another); a re-run on the same directory
    keeps them, so the codes it issued earlier still verify. The file is created once,
    atomically (a concurrent first start reads the winner's file), readable only by
    its owner.
    """
    path = data_dir / EMBEDDED_SECRETS_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=".secrets-")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(fresh_secrets(), handle)
            os.chmod(tmp, 0o600)
            with contextlib.suppress(FileExistsError):  # another process created it first
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    stored = json.loads(path.read_text())
    if not isinstance(stored, dict) or any(not stored.get(name) for name in REQUIRED):
        raise ValueError(f"{path} does not hold {', '.join(REQUIRED)}; delete it to start afresh")
    return {name: str(stored[name]) for name in REQUIRED}
