"""Words the services share through events: languages, decision arms, offer intents.

Each is written once here. chat_agent speaks them when it asks for an offer, the
campaign engine and its model read them, and the redemption tracker reports on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, cast

Language = Literal["ja", "en", "id"]
LANGUAGES: tuple[Language, ...] = ("ja", "en", "id")
# The clerk's home language: what an unknown or unsupported language falls back to.
DEFAULT_LANGUAGE: Language = "ja"


def supported_language(value: str | None) -> Language:
    """`value` if the clerk speaks it, else the default language (the one fallback rule)."""
    return cast(Language, value) if value in LANGUAGES else DEFAULT_LANGUAGE


Arm = Literal["treatment", "explore", "holdout", "none"]

# Why a decision carries no coupon (None when it does).
NO_COUPON_REASONS = (
    "holdout",
    "no_active_campaign",
    "no_eligible_offer",
    "opted_out",
    "cap_reached",
    "budget_exhausted",
    "paced",  # an evenly paced campaign is ahead of its budget's share for now
    "policy_chose_none",
    "redis_unavailable",
    "model_error",
    "rate_limited",
    "drop_cancelled",  # the campaign drop that asked was cancelled before its decision
)

# What a product category tells about the customer's need, in the intent words an
# `offer.requested` context carries (the propensity model's intent vocabulary).
CATEGORY_INTENTS: Mapping[str, str] = {
    "onigiri": "hungry",
    "bento": "hungry",
    "bakery": "hungry",
    "drinks": "thirsty",
    "coffee": "coffee",
    "sweets": "craving_sweet",
    "snacks": "craving_sweet",
}
