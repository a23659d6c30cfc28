"""The console's pages, one module per concept (docs/console.md § Pages)."""
