"""Outgoing LINE messages: the `deliveries` outbox (queue) and the loop that sends it (loop)."""
