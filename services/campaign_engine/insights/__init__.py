"""Why a decision came out as it did, and what a campaign would do: explanations and forecasts
(docs/interfaces.md § Decision explanations and forecasts)."""
