"""Campaign drops on the chat side (docs/interfaces.md § Campaign drops): each drop's
sending rules, and its decided coupons queued as pushes."""
