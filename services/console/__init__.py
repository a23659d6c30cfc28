"""The marketer console: server-rendered pages over the other services' HTTP APIs
(docs/interfaces.md § Marketer console, docs/console.md)."""
