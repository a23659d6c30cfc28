"""Conversations with customers: a turn per LINE event, consent, linking, session state."""
