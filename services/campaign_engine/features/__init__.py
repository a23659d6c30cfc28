"""What the engine knows about each customer, kept current by its update consumers."""

from services.campaign_engine.features.store import CustomerFeatureStore

__all__ = ["CustomerFeatureStore"]
