"""Campaign drops (docs/interfaces.md § Campaign drops): the API, the runner that asks a
decision for every eligible follower, and the progress counts."""
