"""Deciding offer requests: inputs, audience, candidates, the policy, and the decision record."""
