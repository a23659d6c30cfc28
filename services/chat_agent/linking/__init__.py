"""Verified loyalty-card links: LINE's account-link flow (docs/interfaces.md § Account link)."""
