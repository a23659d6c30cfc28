"""The LINE channel: the webhook and its signature, event parsing, the API client, messages, QR."""
