"""Explanations computed once for every process (docs/interfaces.md § Decision explanations and
forecasts): the contributions of a decision are kept in Redis under its id and the model
version that explains it, with a TTL, so another API worker answers the same question from
there instead of walking the trees again. When Redis is not configured or fails, the
process's own bounded cache answers (explain.ExplanationCache), and the explanation is still
served: Redis is an accelerator here, never a dependency.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import redis
import structlog

from services.campaign_engine.insights.explain import (
    Contributions,
    ExplanationCache,
    FeatureEffect,
)

log = structlog.get_logger(__name__)

PREFIX = "ce:explain:"  # campaign_engine's Redis prefix (CONTRIBUTING.md)
DEFAULT_TTL_S = 7 * 24 * 3600  # a decision never changes; the TTL only bounds Redis memory
REDIS_ERRORS = (redis.RedisError, OSError, RuntimeError)


def cache_key(decision_id: str, model_version: str) -> str:
    """The Redis key of one decision's explanation by one model version."""
    return f"{PREFIX}{model_version}:{decision_id}"


def to_json(found: Contributions) -> str:
    """Contributions as compact JSON (floats kept exactly)."""
    return json.dumps(dataclasses.asdict(found), separators=(",", ":"))


def from_json(text: str | bytes) -> Contributions:
    """The inverse of to_json."""
    data: dict[str, Any] = json.loads(text)
    effects = [FeatureEffect(**e) for e in data.pop("effects", [])]
    return Contributions(effects=effects, **data)


class SharedExplanationCache:
    """Redis first (shared by every process), the process's own cache always."""

    def __init__(
        self,
        client: Callable[[], redis.Redis | None],
        *,
        ttl_s: int = DEFAULT_TTL_S,
        local: ExplanationCache | None = None,
    ) -> None:
        self._client = client
        self._ttl_s = ttl_s
        self.local = local or ExplanationCache()

    def get(self, decision_id: str, model_version: str) -> Contributions | None:
        key = cache_key(decision_id, model_version)
        found = self.local.get(key)
        if found is not None:
            return found
        text = self._redis("get", lambda c: c.get(key))
        if text is None:
            return None
        try:
            found = from_json(text)
        except (ValueError, TypeError) as exc:  # another build's layout: compute it afresh
            log.warning("explanation_cache_unreadable", key=key, error=str(exc))
            return None
        self.local.put(key, found)
        return found

    def put(self, decision_id: str, model_version: str, found: Contributions) -> None:
        key = cache_key(decision_id, model_version)
        self.local.put(key, found)
        self._redis("set", lambda c: c.set(key, to_json(found), ex=self._ttl_s))

    def _redis(self, op: str, call: Callable[[redis.Redis], Any]) -> Any:
        try:
            client = self._client()
            return None if client is None else call(client)
        except REDIS_ERRORS as exc:
            log.warning("explanation_cache_redis_unavailable", op=op, error=str(exc))
            return None
